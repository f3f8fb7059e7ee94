"""Who a client is, and the fixed window's arithmetic (the counting itself is tested on the emulator)."""

from __future__ import annotations

import datetime as dt

from shared.auth import User
from shared.telemetry.ratelimit import client_ip, client_key, retry_after, window_at


def test_client_ip_is_the_address_the_load_balancer_saw_not_the_client_supplied_ones():
    # Google's load balancer appends "<client-ip>,<load-balancer-ip>" to what the client sent.
    forged = {"X-Forwarded-For": "1.2.3.4, 5.6.7.8, 203.0.113.7, 130.211.0.9"}
    assert client_ip(forged, "10.9.9.9", trusted_hops=2) == "203.0.113.7"
    assert client_ip({"X-Forwarded-For": "203.0.113.7, 130.211.0.9"}, "10.9.9.9", trusted_hops=2) == "203.0.113.7"
    # Reached without the load balancer: the front end appends only the client's address.
    assert client_ip({"X-Forwarded-For": "1.2.3.4, 203.0.113.8"}, "10.9.9.9", trusted_hops=1) == "203.0.113.8"
    assert client_ip({"X-Forwarded-For": " 2001:db8::1 "}, None, trusted_hops=2) == "2001:db8::1"


def test_client_ip_falls_back_to_the_connection():
    assert client_ip({}, "198.51.100.4", trusted_hops=2) == "198.51.100.4"
    assert client_ip({"X-Forwarded-For": "not-an-ip"}, "198.51.100.4", trusted_hops=2) == "198.51.100.4"
    assert client_ip({"X-Forwarded-For": ""}, None, trusted_hops=2) is None


def test_a_signed_in_user_is_one_client_wherever_they_are():
    ann = User(uid="u-ann", email="ann@example.com")
    assert client_key(ann, "203.0.113.1") == client_key(ann, "198.51.100.1") != client_key(None, "203.0.113.1")


def test_ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4():
    assert client_key(None, "2001:db8:1:2::1") == client_key(None, "2001:db8:1:2:ffff::9")
    assert client_key(None, "2001:db8:1:2::1") != client_key(None, "2001:db8:1:3::1")
    assert client_key(None, "::ffff:203.0.113.1") == client_key(None, "203.0.113.1")


def test_keys_do_not_contain_the_address():
    key = client_key(None, "203.0.113.1")
    assert "203" not in key and len(key) == 32


def test_windows_and_retry_after():
    now = dt.datetime(2026, 3, 1, 12, 0, 45, 500_000, tzinfo=dt.timezone.utc)
    window = window_at(now, 60)
    assert window.start == dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert window.end == dt.datetime(2026, 3, 1, 12, 1, tzinfo=dt.timezone.utc)
    assert retry_after(now, window) == 15
    assert retry_after(window.end - dt.timedelta(milliseconds=1), window) == 1
    assert window_at(now + dt.timedelta(seconds=15), 60).index == window.index + 1
