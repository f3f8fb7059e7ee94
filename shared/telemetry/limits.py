"""How big an error report may be, and how an oversized one is cut down.

A browser that crashes in a loop, or a hostile caller, must not be able to grow a
Firestore document past 1 MiB, a log entry past Cloud Logging's 256 KB, or the
bill. Only the whole body is refused (413): a report whose single fields are too
long is still worth keeping, so each field is truncated and says so, and the
names of the cut fields travel with the report in `truncated`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from shared import firestore_limits
from shared.telemetry.fingerprint import parse_frame

# The default of TELEMETRY_MAX_BODY_BYTES (shared/settings.py), enforced with the
# shared pipeline's 413: a real report (message, 250 frames, a small context) fits
# with room to spare, and the general 1 MiB cap is too much for an endpoint
# anyone may call without signing in.
MAX_BODY_BYTES = 65_536

MAX_MESSAGE_CHARS = 8_192
MAX_DESCRIPTION_CHARS = 4_000
MAX_URL_CHARS = 2_048
MAX_USER_AGENT_CHARS = 512
MAX_RELEASE_CHARS = 128
MAX_ID_CHARS = 128

MAX_STACK_FRAMES = 250
MAX_STACK_LINE_CHARS = 1_024
MAX_STACK_CHARS = 48_000

MAX_CONTEXT_DEPTH = 4
MAX_CONTEXT_KEYS = 32
MAX_CONTEXT_ITEMS = 32
MAX_CONTEXT_KEY_CHARS = 64
MAX_CONTEXT_STRING_CHARS = 512
MAX_CONTEXT_BYTES = 4_096

TRUNCATED_KEY = "_truncated"

def marker(dropped: int, unit: str = "chars") -> str:
    return f"…[truncated {dropped} {unit}]"


def clean_text(value: str) -> str:
    """Lone UTF-16 surrogates (legal in JSON, common in cut-off JS strings) cannot be
    encoded to UTF-8, so Firestore and the log handler would fail on them."""
    return value.encode("utf-8", "replace").decode("utf-8")


def truncate_text(value: str, limit: int) -> tuple[str, bool]:
    """At most `limit` characters, the marker included, keeping the beginning."""
    if len(value) <= limit:
        return value, False
    # The marker's digit count depends on how much is dropped; two passes settle it.
    keep = limit - len(marker(len(value)))
    keep = max(0, limit - len(marker(len(value) - keep)))
    return value[:keep] + marker(len(value) - keep), True


def truncate_stack(stack: str) -> tuple[str, bool]:
    """Keeps the header (the error's own message) and the newest frames.

    JavaScript stacks list the innermost call first, so the frames that locate the
    bug and feed the fingerprint are at the top; the oldest ones are dropped.
    """
    cut = False
    lines = stack.splitlines()
    first_frame = next((i for i, line in enumerate(lines) if parse_frame(line) is not None), len(lines))
    header = "\n".join(lines[:first_frame])
    header, header_cut = truncate_text(header, MAX_MESSAGE_CHARS)
    cut |= header_cut
    frames = []
    for line in lines[first_frame:]:
        line, line_cut = truncate_text(line, MAX_STACK_LINE_CHARS)
        cut |= line_cut
        frames.append(line)
    if len(frames) > MAX_STACK_FRAMES:
        dropped = len(frames) - MAX_STACK_FRAMES
        frames = frames[:MAX_STACK_FRAMES] + ["    " + marker(dropped, "older frames")]
        cut = True
    text = "\n".join(([header] if header else []) + frames)
    text, total_cut = truncate_text(text, MAX_STACK_CHARS)
    return text, cut or total_cut


_DROP = object()


class _Budget:
    """Bytes of JSON left; charged per key and per scalar so nesting is not counted twice."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit
        self.cut = False

    def spend(self, value: Any) -> bool:
        size = len(json.dumps(value, ensure_ascii=False)) + 2  # and its ", " or ": "
        if size > self.remaining:
            self.cut = True
            return False
        self.remaining -= size
        return True


def _context_key(key: str) -> str:
    key = clean_text(key)[:MAX_CONTEXT_KEY_CHARS]
    # Unlike the other free-form maps (refused with a 400), a report from a crashing
    # page is repaired to fit shared/firestore_limits.py's rules rather than refused.
    if firestore_limits.is_reserved(key) or (key.startswith("__") and key.endswith("__")):
        key = key.strip("_") or "_"
    return key or "_"


def _scalar(value: Any, budget: _Budget) -> Any:
    if isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        value = value if firestore_limits.INT64_MIN <= value <= firestore_limits.INT64_MAX else str(value)
    elif isinstance(value, float):
        # NaN and Infinity parse from JSON in Python but are not JSON on the way out.
        value = value if math.isfinite(value) else None
    else:
        value, cut = truncate_text(clean_text(str(value)), MAX_CONTEXT_STRING_CHARS)
        budget.cut |= cut
    return value if budget.spend(value) else _DROP


def _bound_value(value: Any, depth: int, budget: _Budget) -> Any:
    if not isinstance(value, (dict, list, tuple)):
        return _scalar(value, budget)
    if depth >= MAX_CONTEXT_DEPTH:
        budget.cut = True
        return _scalar("…[truncated: nested too deep]", budget)
    if not budget.spend({} if isinstance(value, dict) else []):
        return _DROP
    # A marker for a cut made by count (not by size) is paid for up front; the
    # reserve only has to cover markers along the one path where size ran out.
    limit = MAX_CONTEXT_KEYS if isinstance(value, dict) else MAX_CONTEXT_ITEMS
    if len(value) > limit and not budget.spend(marker(len(value), "items")):
        return _DROP
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            name = _context_key(str(key))
            if index >= MAX_CONTEXT_KEYS or not budget.spend(name):
                break
            bounded = _bound_value(item, depth + 1, budget)
            if bounded is _DROP:
                break
            out[name] = bounded
        if len(out) < len(value):
            budget.cut = True
            out[TRUNCATED_KEY] = True
        return out
    items = []
    for index, item in enumerate(value):
        if index >= MAX_CONTEXT_ITEMS:
            break
        # Firestore cannot hold an array directly inside an array; a one-key map can,
        # and that map is one more level of depth.
        inner_array = isinstance(item, (list, tuple))
        if inner_array and not (budget.spend({}) and budget.spend(NESTED_ARRAY_KEY)):
            break  # the wrapping map's own bytes count against the size too
        bounded = _bound_value(item, depth + 1 + inner_array, budget)
        if bounded is _DROP:
            break
        if inner_array and isinstance(bounded, list):
            bounded = {NESTED_ARRAY_KEY: bounded}
        items.append(bounded)
    if len(items) < len(value):
        budget.cut = True
        items.append(marker(len(value) - len(items), "items"))
    return items


NESTED_ARRAY_KEY = "items"

# Room kept back for the truncation markers themselves.
_MARKER_RESERVE = 256


def bound_context(context: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Depth, keys per object, items per list, string length and total JSON size;
    whatever does not fit is dropped and the object that lost it says `_truncated`."""
    budget = _Budget(MAX_CONTEXT_BYTES - _MARKER_RESERVE)
    bounded = _bound_value(context, 0, budget)
    if bounded is _DROP:
        return {TRUNCATED_KEY: True}, True
    return bounded, budget.cut


FIELD_LIMITS: dict[str, int] = {
    "message": MAX_MESSAGE_CHARS,
    "description": MAX_DESCRIPTION_CHARS,
    "url": MAX_URL_CHARS,
    "user_agent": MAX_USER_AGENT_CHARS,
    "release": MAX_RELEASE_CHARS,
    "run_id": MAX_ID_CHARS,
    "lead_doc_id": MAX_ID_CHARS,
}
