"""Grouping: what varies between occurrences of one bug is normalised away."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.telemetry.fingerprint import (
    error_type,
    fingerprint,
    is_in_app,
    normalise_file,
    normalise_function,
    parameterise,
    parse_frame,
    parse_stack,
)

PAGE = "https://mc.web.app/ops"


def chrome(file="https://mc.web.app/runs.js?v=41", fn="renderJob", line=120, col=17, message="x is undefined"):
    return (
        f"TypeError: {message}\n"
        f"    at {fn} ({file}:{line}:{col})\n"
        f"    at async loadRun ({file}:88:5)\n"
        "    at https://www.gstatic.com/firebasejs/10.12.0/firebase-app.js:1:4410"
    )


def test_chrome_frames():
    frame = parse_frame("    at async Foo.bar [as baz] (https://x.io/a.js?v=1:10:20)")
    assert (frame.function, frame.file, frame.line, frame.column) == (
        "async Foo.bar [as baz]", "https://x.io/a.js?v=1", 10, 20)
    anonymous = parse_frame("    at https://x.io/a.js:3:4")
    assert (anonymous.function, anonymous.file, anonymous.line) == ("", "https://x.io/a.js", 3)
    assert parse_frame("    at new Run (native)").file == "native"
    assert parse_frame("    at eval (eval at run (https://x.io/a.js:5:3), <anonymous>:1:1)").file == "<eval>"


def test_firefox_and_safari_frames():
    frame = parse_frame("loadRun/<@https://x.io/a.js:88:11")
    assert (frame.function, frame.file, frame.line, frame.column) == ("loadRun/<", "https://x.io/a.js", 88, 11)
    assert parse_frame("@https://x.io/a.js:1:1").function == ""
    assert parse_frame("global code@https://x.io/a.js:1:1").function == "global code"
    assert parse_frame("forEach@[native code]").line is None
    assert parse_frame("Error: mail bob@x.io:1") is None  # a header, not a frame


def test_header_lines_are_kept_apart_from_frames():
    header, frames = parse_stack("Error: line one\nline two\n    at f (https://x.io/a.js:1:2)")
    assert header == ["Error: line one", "line two"]
    assert len(frames) == 1


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("https://mc.web.app/static/3f9a8b7/app.4c1e2d9f.js?v=12#x", "/static/app.js"),
        ("http://127.0.0.1:5000/runs.js", "/runs.js"),
        ("https://x.io/assets/index-BxY3k9aZ.js", "/assets/index.js"),
        ("https://x.io/static/js/main.3f9a8b7c.chunk.js", "/static/js/main.chunk.js"),
        ("https://x.io/v1.2.3/app.js", "/app.js"),
        ("webpack:///./src/runs.js", "/src/runs.js"),
        ("async https://x.io/runs.js", "/runs.js"),
        ("runs.js", "/runs.js"),
        ("https://x.io/[REDACTED:token]/runs.js", "/runs.js"),
        ("http://[::1", "/http:/[::1"),  # unparseable authority: kept as a path, no exception
    ],
)
def test_files_lose_origin_query_hash_and_revision(raw, normal):
    assert normalise_file(raw) == normal


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("async loadRun", "loadRun"), ("new Run", "Run"), ("loadRun/</<", "loadRun"), ("gen*", "gen"),
     ("Foo.bar [as baz]", "Foo.bar"), ("", "<anonymous>")],
)
def test_function_names(raw, normal):
    assert normalise_function(raw) == normal


def test_in_app_frames():
    def frame(file):
        return parse_frame(f"    at f ({file}:1:1)")

    assert is_in_app(frame("https://mc.web.app/runs.js"), PAGE)
    assert is_in_app(frame("/runs.js"), PAGE)
    assert not is_in_app(frame("https://cdn.other.io/lib.js"), PAGE)
    assert not is_in_app(frame("https://www.gstatic.com/firebasejs/10.0.0/firebase-auth.js"), None)
    assert not is_in_app(frame("https://mc.web.app/__/firebase/init.js"), PAGE)
    assert not is_in_app(frame("chrome-extension://abcdef/content.js"), PAGE)
    assert not is_in_app(parse_frame("    at f (native)"), PAGE)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("Uncaught TypeError: x", "TypeError"), ("Uncaught (in promise) FirebaseError: y", "FirebaseError"),
     ("Error: plain", "Error"), ("RangeError", "RangeError"), ("Script error.", None), ("something broke", None)],
)
def test_error_type(text, kind):
    assert error_type(text) == kind


def test_the_same_bug_across_runs_hosts_builds_and_columns_shares_a_fingerprint():
    a = fingerprint(message="Uncaught TypeError: x", stack=chrome(), page_url=PAGE)
    b = fingerprint(message="TypeError: x", stack=chrome(file="http://127.0.0.1:5000/runs.js?v=42", col=3,
                                                         message="x is undefined in run 8f14e45fceea"),
                    page_url="http://127.0.0.1:5000/ops")
    assert a.fingerprint == b.fingerprint
    assert a.basis == "stack" and a.error_type == "TypeError"
    assert a.frames == ("/runs.js|renderJob|120", "/runs.js|loadRun|88")  # the CDN frame is not ours


def test_a_different_line_function_or_type_is_a_different_bug():
    base = fingerprint(message=None, stack=chrome(), page_url=PAGE).fingerprint
    assert fingerprint(message=None, stack=chrome(line=121), page_url=PAGE).fingerprint != base
    assert fingerprint(message=None, stack=chrome(fn="renderLead"), page_url=PAGE).fingerprint != base
    assert fingerprint(message=None, stack=chrome().replace("TypeError", "RangeError"), page_url=PAGE).fingerprint != base


def test_only_the_top_three_in_app_frames_count():
    frames = "\n".join(f"    at f{i} (https://mc.web.app/a.js:{i}:1)" for i in range(10))
    deeper = frames.replace("f9 (https://mc.web.app/a.js:9:1)", "other (https://mc.web.app/b.js:1:1)")
    assert fingerprint(message="Error: e", stack=frames).fingerprint == fingerprint(message="Error: e", stack=deeper).fingerprint


def test_third_party_frames_group_when_there_are_no_in_app_ones():
    stack = "TypeError: t\n    at x (https://www.gstatic.com/firebasejs/10.0.0/firebase-app.js:1:2)"
    grouping = fingerprint(message=None, stack=stack, page_url=PAGE)
    assert grouping.basis == "stack"
    assert grouping.frames == ("/firebasejs/firebase-app.js|x|1",)


def test_messages_are_parameterised():
    assert parameterise(
        "Uncaught Error: Run AbCdEf1234567890xyZ1 not found for 550e8400-e29b-41d4-a716-446655440000 "
        "at https://x.io/a?b=1 by [REDACTED:email] or bob@x.io 0xdeadbeef 3f9a8b7c, 42 items, card [REDACTED:card]"
    ) == ("Error: Run <id> not found for <uuid> at <url> by <email> or <email> <hex> <hex>, <num> items, "
          "card <num>")
    assert parameterise("Cannot read properties of undefined (reading 'status')") == (
        "Cannot read properties of undefined (reading 'status')")


def test_without_frames_the_message_groups():
    a = fingerprint(message="Run r-123 failed after 3 attempts", stack="unhandledrejection")
    b = fingerprint(message="Run r-98765 failed after 12 attempts", stack=None)
    c = fingerprint(message="Template t-1 has no subject", stack=None)
    assert a.basis == "message"
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_a_manual_report_without_message_groups_by_its_description():
    a = fingerprint(message=None, stack=None, description="The page froze after 12 leads")
    b = fingerprint(message=None, stack=None, description="The page froze after 40 leads")
    assert a.fingerprint == b.fingerprint
    assert a.error_type == "Error"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.text(max_size=600), st.text(max_size=100))
def test_fingerprinting_never_fails_and_is_deterministic(message, stack, url):
    first = fingerprint(message=message, stack=stack, page_url=url)
    assert first == fingerprint(message=message, stack=stack, page_url=url)
    assert len(first.fingerprint) == 32 and int(first.fingerprint, 16) >= 0


@pytest.mark.parametrize(
    "hostile",
    ["a" * 65_536, "1" * 65_536, "a_" * 32_768, "a1" * 32_768, "[REDACTED" * 7_000, "0x" * 32_768,
     "    at a (" * 6_000, "at (" * 16_000, "a@" * 32_768, "a@b:1\n" * 10_000, "%3D" * 20_000, "eyJa." * 13_000],
)
def test_64_kib_of_hostile_text_fingerprints_in_linear_time(hostile):
    started = time.perf_counter()
    parameterise(hostile)
    fingerprint(message=hostile[:8192], stack=hostile, page_url=hostile[:2048])
    assert time.perf_counter() - started < 1.0
