"""Which reports are the same bug: a fingerprint of the normalised error.

The same bug hit by two operators, on two runs, from two deploys of the same
code, must land in one `telemetry_errors/{fingerprint}` document, so whatever
varies between occurrences is normalised away first:

- from the stack: the error type plus the top in-app frames, each as file (no
  origin, query, hash, revision segment or cache-busting hash), function and
  line. Columns are left out: they move with every unrelated edit on the line.
- without a usable stack: the error type plus the message with its variable
  parts (numbers, ids, uuids, hex, urls, emails, redacted secrets) replaced.

Chrome/V8 frames read "    at fn (url:line:col)", Firefox and Safari frames
"fn@url:line:col"; both are understood.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from urllib.parse import SplitResult, urlsplit

from shared.telemetry.scrub import average_word_length

FINGERPRINT_VERSION = "v1"
TOP_FRAMES = 3

_CHROME_FRAME = re.compile(r"^\s*at\s+(?:(?P<fn>.+?)\s+\()?(?P<loc>[^()]+?)\)?\s*$")
_GECKO_FRAME = re.compile(r"^(?P<fn>[^@\s]*(?:\s[^@:]*)?)@(?P<loc>.+)$")
_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?$")

_ERROR_TYPE = re.compile(
    r"^\s*(?:Uncaught\s+(?:\(in promise\)\s+)?)?(?:\[object\s+)?"
    r"(?P<type>[A-Z][A-Za-z0-9_$]*(?:Error|Exception)|Error|DOMException)\b\]?\s*(?::|$)"
)

_NOT_IN_APP_SCHEMES = ("chrome-extension", "moz-extension", "safari-extension", "safari-web-extension")
# Firebase's own SDK from Hosting's reserved /__/ URLs, CDNs and vendored code.
_NOT_IN_APP_PATH = re.compile(r"/__/|/node_modules/|/vendor/|/firebasejs/|\.min\.js$", re.IGNORECASE)
_NOT_IN_APP_HOST = re.compile(
    r"gstatic\.com$|googleapis\.com$|jsdelivr\.net$|unpkg\.com$|cdnjs\.cloudflare\.com$", re.IGNORECASE
)


def split_url(url: str) -> SplitResult:
    """urlsplit for text from a browser: an invalid authority ("http://[x") raises
    ValueError in urlsplit, and here it is read as a bare path instead."""
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 (parses the authority, which may raise too)
        return parts
    except ValueError:
        return SplitResult("", "", url.split("?", 1)[0].split("#", 1)[0], "", "")


@dataclasses.dataclass(frozen=True)
class Frame:
    function: str
    file: str  # as reported, scrubbed
    line: int | None
    column: int | None

    @property
    def location(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}" + (f":{self.column}" if self.column is not None else "")


def parse_frame(line: str) -> Frame | None:
    match = _CHROME_FRAME.match(line)
    if match is None and not line[:1].isspace() and "@" in line:
        match = _GECKO_FRAME.match(line.rstrip())
        if match and ": " in match.group("fn"):
            match = None  # a header like "Error: bad@address:1", not a frame
    if match is None:
        # "at eval (eval at run (url:5:3), <anonymous>:1:1)": a frame, located nowhere useful.
        if re.match(r"^\s*at\s", line):
            return Frame(line.strip()[3:].split(" ", 1)[0], "<eval>", None, None)
        return None
    function = (match.group("fn") or "").strip()
    location = match.group("loc").strip()
    parsed = _LOCATION.match(location)
    if parsed is None:
        if location not in ("native", "<anonymous>", "[native code]"):
            return None
        return Frame(function, location, None, None)
    return Frame(function, parsed.group("file"), int(parsed.group("line")), _int(parsed.group("col")))


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def parse_stack(stack: str) -> tuple[list[str], list[Frame]]:
    """The header lines (the error's own text, before the first frame) and the frames."""
    header: list[str] = []
    frames: list[Frame] = []
    for line in stack.splitlines():
        frame = parse_frame(line)
        if frame is not None:
            frames.append(frame)
        elif not frames and line.strip():
            header.append(line)
    return header, frames


def error_type(*texts: str | None) -> str | None:
    for text in texts:
        if text:
            match = _ERROR_TYPE.match(text)
            if match:
                return match.group("type")
    return None


def strip_uncaught(message: str) -> str:
    return re.sub(r"^\s*Uncaught\s+(?:\(in promise\)\s+)?", "", message)


# Bundlers' content hashes: app.4c1e2d9f.js, index-BxY3k9aZ.js, main.3f9a8b7c.chunk.js.
_HASH_SUFFIX = re.compile(r"[.\-_](?=[A-Za-z0-9_]*\d)[A-Za-z0-9_]{6,}(?=(?:\.[A-Za-z0-9]+)+$)")
# Path segments that change per deploy: versions, commit SHAs, build ids.
_REVISION_SEGMENT = re.compile(
    r"^(?:v?\d+(?:\.\d+)*(?:[\-+][A-Za-z0-9.]+)?|(?=[0-9a-f]*\d)[0-9a-f]{7,}|(?=[A-Za-z0-9_\-]*\d)[A-Za-z0-9_\-]{16,}|\[REDACTED(?::[a-z]{1,8})?\])$"
)


def normalise_file(file: str) -> str:
    """'https://app.web.app/static/3f9a8b7/app.4c1e2d9f.js?v=12#x' -> '/static/app.js'."""
    # V8 writes "at async https://…" when the awaiting function has no name.
    file = re.sub(r"^async\s+", "", file)
    parts = split_url(file)
    path = parts.path if parts.scheme or parts.netloc else file.split("?", 1)[0].split("#", 1)[0]
    segments = [s for s in path.split("/") if s not in ("", ".", "..") and not _REVISION_SEGMENT.match(s)]
    if segments:
        segments[-1] = _HASH_SUFFIX.sub("", segments[-1])
    return "/" + "/".join(segments)


def normalise_function(function: str) -> str:
    function = re.sub(r"^(?:async\s+|new\s+)+", "", function)
    function = function.replace("/<", "").rstrip("*").strip()
    # V8's "[as alias]" names the property the function was called through.
    function = re.sub(r"\s*\[as [^\]]*\]$", "", function)
    return function or "<anonymous>"


def is_in_app(frame: Frame, page_url: str | None) -> bool:
    if frame.line is None:
        return False
    parts = split_url(frame.file)
    if parts.scheme in _NOT_IN_APP_SCHEMES:
        return False
    if _NOT_IN_APP_PATH.search(parts.path or frame.file):
        return False
    host = (parts.hostname or "").lower()
    if host and _NOT_IN_APP_HOST.search(host):
        return False
    if page_url and host:
        page_host = (split_url(page_url).hostname or "").lower()
        if page_host and page_host != host:
            return False  # a script from another origin is someone else's code
    return True


def _frame_key(frame: Frame) -> str:
    return f"{normalise_file(frame.file)}|{normalise_function(frame.function)}|{frame.line}"


_PARAMETERS = [
    (re.compile(r"(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*://[^\s\"'<>()]+", re.IGNORECASE), "<url>"),
    (re.compile(r"\[REDACTED:email\]|(?<![\w.+%\-])[\w.+%\-]++@[\w\-]++(?:\.[\w\-]++)++"), "<email>"),
    # A card-like digit run is a number that happened to pass Luhn: same placeholder.
    (re.compile(r"\[REDACTED:card\]"), "<num>"),
    (re.compile(r"\[REDACTED(?::[a-z]{1,8})?\]"), "<redacted>"),
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE),
        "<uuid>",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{6,}\b", re.IGNORECASE), "<hex>"),
]
_ID_CANDIDATE = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{8,}(?![A-Za-z0-9_\-])")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def _looks_like_id(candidate: str) -> bool:
    """Firestore auto-ids, run ids, request ids: letters and digits mixed, or a
    word-shape no identifier written by a person has."""
    letters = any(c.isalpha() for c in candidate)
    digits = any(c.isdigit() for c in candidate)
    if letters and digits:
        return True
    return letters and average_word_length(candidate) < 3


def parameterise(message: str) -> str:
    text = strip_uncaught(message)
    for pattern, placeholder in _PARAMETERS:
        text = pattern.sub(placeholder, text)
    text = _ID_CANDIDATE.sub(lambda m: "<id>" if _looks_like_id(m.group(0)) else m.group(0), text)
    text = _NUMBER.sub("<num>", text)
    return " ".join(text.split())[:1000]


@dataclasses.dataclass(frozen=True)
class Grouping:
    fingerprint: str
    error_type: str
    basis: str  # "stack" or "message": which rule grouped it, for whoever triages
    frames: tuple[str, ...]


def fingerprint(
    *, message: str | None, stack: str | None, description: str | None = None, page_url: str | None = None
) -> Grouping:
    header, frames = parse_stack(stack or "")
    kind = error_type(message, *header) or "Error"
    in_app = [f for f in frames if is_in_app(f, page_url)]
    # Errors thrown inside someone else's code still group by where they were thrown.
    chosen = in_app or [f for f in frames if f.line is not None]
    if chosen:
        keys = tuple(_frame_key(f) for f in chosen[:TOP_FRAMES])
        basis_text = "\n".join(keys)
        basis = "stack"
    else:
        keys = ()
        text = message or "\n".join(header) or description or ""
        basis_text = parameterise(text)
        basis = "message"
    material = "\n".join((FINGERPRINT_VERSION, kind, basis, basis_text))
    digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]
    return Grouping(fingerprint=digest, error_type=kind, basis=basis, frames=keys)
