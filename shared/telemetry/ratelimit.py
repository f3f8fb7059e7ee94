"""Per-client limit on error reports, shared by every instance through Firestore.

A fixed window: each client has one counter document per window
(telemetry_rate_limits/{client}-{window}), incremented atomically by every report;
a report whose count lands above the limit is refused with 429 and Retry-After
set to the end of the window. Cloud Functions scale out to many instances, so an
in-memory counter would multiply the limit by the instance count.

Who the client is: the signed-in user when the report carries a valid ID token,
else the address the trusted front end saw, else the connection's address. That
address is the TRUSTED_PROXY_HOPS-th entry of X-Forwarded-For counted from the
right: Google's load balancer appends `<client-ip>,<load-balancer-ip>` to whatever
the client sent, so every entry left of those two is the client's own writing
and forging it must not buy a fresh limit (docs/telemetry.md). IPv6 clients are
counted per /64, the block one household or device usually gets. The key is
hashed before it becomes a document id, so no address is stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import math
from typing import TYPE_CHECKING, Any

from shared.errors import RateLimited
from shared.store import telemetry as store

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.auth import User


def client_ip(headers: Any, remote_addr: str | None, trusted_hops: int) -> str | None:
    entries = [entry.strip() for entry in (headers.get("X-Forwarded-For") or "").split(",") if entry.strip()]
    # Fewer entries than trusted hops: no front end appended them (a local run), so the
    # left-most is as good as any; behind the load balancer there are always enough.
    forwarded = entries[max(0, len(entries) - trusted_hops)] if entries else ""
    for candidate in (forwarded, remote_addr or ""):
        try:
            return str(ipaddress.ip_address(candidate.strip()))
        except ValueError:
            continue
    return None


def client_key(user: "User | None", ip: str | None) -> str:
    if user is not None:
        identity = f"user:{user.uid}"
    elif ip is not None:
        address = ipaddress.ip_address(ip)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if isinstance(address, ipaddress.IPv6Address):
            identity = f"ip:{ipaddress.ip_network(f'{address}/64', strict=False)}"
        else:
            identity = f"ip:{address}"
    else:
        identity = "unknown"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class Window:
    index: int
    start: dt.datetime
    seconds: int

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.seconds)


def window_at(now: dt.datetime, seconds: int) -> Window:
    index = math.floor(now.timestamp() / seconds)
    start = dt.datetime.fromtimestamp(index * seconds, tz=dt.timezone.utc)
    return Window(index, start, seconds)


def retry_after(now: dt.datetime, window: Window) -> int:
    return max(1, math.ceil((window.end - now).total_seconds()))


def check(db: "firestore.Client", key: str, *, limit: int, window_seconds: int, now: dt.datetime) -> None:
    """Counts this report; raises RateLimited above `limit` (0 turns the limit off)."""
    if limit <= 0:
        return
    window = window_at(now, window_seconds)
    count = store.count_request(db, key, window.index, window.start, window_seconds)
    if count > limit:
        raise RateLimited(
            f"too many error reports: at most {limit} every {window_seconds} s; try again later",
            retry_after_seconds=retry_after(now, window),
        )
