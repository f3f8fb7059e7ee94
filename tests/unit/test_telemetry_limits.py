"""Bounds of an error report: every field cut to its limit, and saying so."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.telemetry import limits
from shared.telemetry.limits import TRUNCATED_KEY, bound_context, truncate_stack, truncate_text

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.just("y" * 700),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=60,
)


def chrome_stack(frames: int) -> str:
    lines = ["TypeError: Cannot read properties of undefined (reading 'status')"]
    lines += [f"    at fn{i} (https://mc.web.app/ops.js:{i + 1}:7)" for i in range(frames)]
    return "\n".join(lines)


def test_short_text_is_untouched():
    assert truncate_text("hello", 10) == ("hello", False)


def test_message_is_cut_at_8192_chars_with_a_marker():
    text, cut = truncate_text("x" * 20_000, limits.MAX_MESSAGE_CHARS)
    assert cut
    assert len(text) == limits.MAX_MESSAGE_CHARS
    assert text.startswith("xxxx")
    kept = len(text) - len("…[truncated 11832 chars]")
    assert text == "x" * kept + "…[truncated 11832 chars]"
    assert kept + 11832 == 20_000


@given(st.text(max_size=3000), st.integers(min_value=40, max_value=2000))
def test_truncated_text_never_exceeds_its_limit(text, limit):
    out, cut = truncate_text(text, limit)
    assert len(out) <= limit
    assert cut == (len(text) > limit)
    if not cut:
        assert out == text


def test_stack_keeps_the_header_and_the_newest_250_frames():
    stack, cut = truncate_stack(chrome_stack(400))
    lines = stack.splitlines()
    assert cut
    assert lines[0].startswith("TypeError: Cannot read")
    assert lines[1] == "    at fn0 (https://mc.web.app/ops.js:1:7)"  # innermost call kept
    assert lines[250] == "    at fn249 (https://mc.web.app/ops.js:250:7)"
    assert "fn250 " not in stack  # the oldest frames are the ones dropped
    assert lines[-1].strip() == "…[truncated 150 older frames]"
    assert len(lines) == 1 + 250 + 1


def test_a_stack_of_250_frames_is_not_cut():
    stack, cut = truncate_stack(chrome_stack(250))
    assert not cut
    assert stack == chrome_stack(250)


def test_firefox_frames_count_as_frames():
    stack = "\n".join(f"fn{i}@https://mc.web.app/ops.js:{i}:3" for i in range(300))
    out, cut = truncate_stack(stack)
    assert cut
    assert out.splitlines()[0] == "fn0@https://mc.web.app/ops.js:0:3"
    assert len(out.splitlines()) == 251


def test_an_overlong_frame_line_and_header_are_cut():
    stack = "Error: " + "m" * 10_000 + "\n    at f (https://x/" + "p" * 5000 + ".js:1:1)"
    out, cut = truncate_stack(stack)
    assert cut
    header, frame = out.split("\n")
    assert len(header) == limits.MAX_MESSAGE_CHARS
    assert len(frame) == limits.MAX_STACK_LINE_CHARS


def test_small_context_is_kept_as_is():
    context = {"page": "runs", "run": {"status": "running", "counts": [1, 2, 3]}, "ok": True, "n": 1.5}
    assert bound_context(context) == (context, False)


def test_context_depth_is_bounded():
    context = {"a": {"b": {"c": {"d": {"e": 1}}}}}
    bounded, cut = bound_context(context)
    assert cut
    assert bounded == {"a": {"b": {"c": {"d": "…[truncated: nested too deep]"}}}}


def test_context_keys_and_items_are_counted():
    bounded, cut = bound_context({"many": {f"k{i}": i for i in range(100)}, "list": list(range(100))})
    assert cut
    assert len(bounded["many"]) == limits.MAX_CONTEXT_KEYS + 1
    assert bounded["many"][TRUNCATED_KEY] is True
    assert bounded["list"][: limits.MAX_CONTEXT_ITEMS] == list(range(limits.MAX_CONTEXT_ITEMS))
    assert bounded["list"][-1] == "…[truncated 68 items]"


def test_context_strings_are_cut():
    bounded, cut = bound_context({"s": "x" * 2000})
    assert cut
    assert len(bounded["s"]) == limits.MAX_CONTEXT_STRING_CHARS


def test_context_total_size_is_bounded():
    bounded, cut = bound_context({f"k{i}": "v" * 400 for i in range(30)})
    assert cut
    assert bounded[TRUNCATED_KEY] is True
    assert len(json.dumps(bounded, ensure_ascii=False)) <= limits.MAX_CONTEXT_BYTES


def test_context_values_firestore_and_json_cannot_hold_are_made_safe():
    bounded, _ = bound_context(
        {"nan": float("nan"), "inf": float("-inf"), "big": 2**70, "__name__": 1, "": 2, "lone": "a\ud800b"}
    )
    assert bounded["nan"] is None and bounded["inf"] is None
    assert bounded["big"] == str(2**70)
    assert "__name__" not in bounded and bounded["name"] == 1
    assert bounded["_"] == 2
    assert bounded["lone"] == "a?b"
    json.dumps(bounded, allow_nan=False).encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=8) | st.just("k" * 100), json_values, max_size=12))
def test_any_context_comes_out_within_every_bound(context):
    bounded, _ = bound_context(context)
    encoded = json.dumps(bounded, ensure_ascii=False, allow_nan=False)
    assert len(encoded) <= limits.MAX_CONTEXT_BYTES
    encoded.encode("utf-8")

    def depth(value, level=0):
        if isinstance(value, dict):
            assert len(value) <= limits.MAX_CONTEXT_KEYS + 1
            return max([level] + [depth(v, level + 1) for v in value.values()])
        if isinstance(value, list):
            assert len(value) <= limits.MAX_CONTEXT_ITEMS + 1
            return max([level] + [depth(v, level + 1) for v in value])
        if isinstance(value, str):
            assert len(value) <= limits.MAX_CONTEXT_STRING_CHARS
        return level

    assert depth(bounded) <= limits.MAX_CONTEXT_DEPTH


def test_the_body_cap_setting_defaults_to_the_documented_limit():
    from shared.settings import Settings

    assert Settings.model_fields["telemetry_max_body_bytes"].default == limits.MAX_BODY_BYTES
