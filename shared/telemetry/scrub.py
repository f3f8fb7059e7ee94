"""Secrets and personal data out of an error report before it is stored or logged.

Browsers put whatever they hold into an error: a URL with `?token=`, a failed
fetch's headers, a lead's email in a message. Reports end up in Firestore and in
Cloud Logging, which more people can read than the data they came from, so the
rule is: when in doubt, replace. Two kinds of rule:

- by key: anything under a key that names a credential (password, secret, token,
  auth, api_key, bearer, credentials, private_key, cookie, session) is replaced
  whole, at any depth of `context` and in `key=value` text such as query strings;
- by shape, in every string: bearer/basic credentials, JWTs, URL user-info,
  email addresses, long url-safe random strings (worker tokens, API keys) and
  digit runs that pass the Luhn check of a card number.

Every pattern is anchored at a character-class boundary so a 64 KiB string is
scanned in linear time (no pattern can backtrack across a long run).
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"
JWT = "[REDACTED:jwt]"
TOKEN = "[REDACTED:token]"
EMAIL = "[REDACTED:email]"
CARD = "[REDACTED:card]"

# "auth" and "authorization" but not "author" or "authority"; "pass" but not "passport".
_SENSITIVE = (
    r"pass(?:word|wd|phrase|code)?(?![a-z])|pwd|secret|token|auth(?!or(?!i[sz]))|api[_-]?key|apikey|bearer"
    r"|credential|private[_-]?key|cookie|session|signature|sig(?![a-z])|cvv|cvc"
)
_SENSITIVE_KEY = re.compile(_SENSITIVE, re.IGNORECASE)


def is_sensitive_key(key: str) -> bool:
    return _SENSITIVE_KEY.search(key) is not None


# "Bearer <x>" anywhere; "Basic <x>" only when <x> looks like base64 (the word
# "basic" is common in prose). The credential is the next word.
_AUTH_SCHEME = re.compile(
    r"(?i:\b(bearer))(\s+)[A-Za-z0-9\-._~+/]{8,}=*"
    r"|\b(Basic)(\s+)(?=[a-z0-9+/]*[A-Z0-9+/])[A-Za-z0-9+/]{8,}={0,2}"
)

# A header copied into text: a cookie line or an Authorization line is secret whole.
_HEADER_LINE = re.compile(r"(?im)^([ \t]*+(?:set-)?cookie|[ \t]*+(?:proxy-)?authorization)([ \t]*+:)[^\n]*+")

# JWTs (and so Firebase ID tokens): base64url JSON header, always starting "eyJ".
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")

# key=value in query strings, fragments, form bodies and free text; '%3D' is an
# encoded '=' inside a nested redirect URL. Dots are allowed in the key here
# ("user.password=") because '=' cannot follow a file name in a stack frame.
_KEY_EQUALS = re.compile(r"(?<![A-Za-z0-9_.\-])([A-Za-z0-9_.\-]++)\s*+(?:=|%3[Dd])\s*+[\"']?+")
# The value stops before "&", an encoded "&", or a frame's ":line:col)".
_EQUALS_VALUE = re.compile(r"(?!\[REDACTED)(?:(?!%26|:\d++(?::\d++)?+(?![^\s)]))[^\s&#;,\"'<>)])++")

# key: value and "key": "value" (JSON, headers, prose). No dots in the key, so a
# frame like "auth.js:12:7" is not mistaken for one.
_KEY_COLON = re.compile(r"(?<![A-Za-z0-9_\-])[\"']?+([A-Za-z0-9_\-]++)[\"']?+\s*+:\s*+")
_COLON_VALUE = re.compile(r"\"[^\"\n]*+\"|'[^'\n]*+'|(?!\[REDACTED|\d++:\d)[^\s,;}\]\"']++")

# https://user:password@host
_USERINFO = re.compile(r"(?i)(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]*://)[^/\s@:]+(?::[^/\s@]*)?@")

# Possessive throughout; the last label is checked in _email(): it must look like a
# top-level domain and not a source-file extension ("fn@app.js:1:2" is a Firefox
# stack frame, not an address).
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]++@[A-Za-z0-9\-]++(?:\.[A-Za-z0-9\-]++)++")
_CODE_EXTENSIONS = frozenset({"js", "mjs", "cjs", "ts", "tsx", "jsx", "htm", "html", "css", "map", "json", "vue", "py"})

_URLSAFE_RUN = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{32,}(?![A-Za-z0-9_\-])")
_HEX_OR_UUID = re.compile(r"[0-9a-f\-]+|[0-9A-F\-]+")

# 13-19 digits, optionally grouped by spaces or dashes, not part of a longer number.
_CARD = re.compile(r"(?<![\d.])(?:\d[ \-]?){12,18}\d(?![\d])")


def _looks_random(run: str) -> bool:
    """True for secrets.token_urlsafe(24+) output and API keys, false for identifiers.

    Hex digests and UUIDs are identifiers here (release SHAs, document ids), and
    so are lowercase or snake/kebab names. A mixed-case run of 40+ characters is
    a token: token_urlsafe(32) gives 43, and lacks either case once in ~1e10.
    Shorter runs must also break into words too short for camelCase English.
    """
    if _HEX_OR_UUID.fullmatch(run):
        return False
    upper = any(c.isupper() for c in run)
    lower = any(c.islower() for c in run)
    digit = any(c.isdigit() for c in run)
    if not lower or not (upper or digit):
        return False
    if len(run) >= 40 and upper:
        return True
    average_word = average_word_length(run)
    return average_word < 3.5 or (upper and digit and average_word < 5)


_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def average_word_length(text: str) -> float:
    """Characters per camelCase word or digit run: low for random ids ("aZ3kQ9"), high for names."""
    return len(text) / max(1, len(_WORD.findall(text)))


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    # Card numbers start 2-6 (Mastercard, Amex, Visa, Discover...); epoch
    # milliseconds (13 digits starting with 1) would otherwise pass Luhn 1 in 10.
    if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits):
        return CARD
    return match.group(0)


def _email(match: re.Match[str]) -> str:
    tld = match.group(0).rsplit(".", 1)[1]
    if len(tld) >= 2 and tld.isascii() and tld.isalpha() and tld.lower() not in _CODE_EXTENSIONS:
        return EMAIL
    return match.group(0)


def _redact_values(text: str, key: re.Pattern[str], value: re.Pattern[str]) -> str:
    """Replaces the value after every credential-naming key.

    Each key is matched whole and possessively, and whether it names a credential
    is decided here, so scanning stays linear even in one 64 KiB word; after a key
    that is not sensitive, scanning resumes right after it, so a sensitive key
    nested inside its value ("next=%2Fcb%3Ftoken%3D…") is still found.
    """
    out: list[str] = []
    position = 0
    while (match := key.search(text, position)) is not None:
        out.append(text[position : match.end()])
        position = match.end()
        if not is_sensitive_key(match.group(1)):
            continue
        found = value.match(text, position)
        if found is None:
            continue
        quoted = found.group(0)[:1] in "\"'" and len(found.group(0)) >= 2 and found.group(0)[-1] == found.group(0)[0]
        out.append(f"{found.group(0)[0]}{REDACTED}{found.group(0)[0]}" if quoted else REDACTED)
        position = found.end()
    out.append(text[position:])
    return "".join(out)


def _auth_scheme(match: re.Match[str]) -> str:
    scheme, space = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    return f"{scheme}{space}{REDACTED}"


def scrub_text(text: str) -> str:
    """Order matters: credentials with a recognisable prefix go first, so the
    generic rules after them cannot leave half of one behind."""
    if not text:
        return text
    text = _HEADER_LINE.sub(lambda m: f"{m.group(1)}{m.group(2)} {REDACTED}", text)
    text = _AUTH_SCHEME.sub(_auth_scheme, text)
    text = _JWT.sub(JWT, text)
    text = _redact_values(text, _KEY_EQUALS, _EQUALS_VALUE)
    text = _redact_values(text, _KEY_COLON, _COLON_VALUE)
    # "https://[REDACTED]@host" would not parse as a URL, and "REDACTED@host" reads as
    # an email; "***" is valid user-info and neither.
    text = _USERINFO.sub(lambda m: f"{m.group(1)}***@", text)
    text = _EMAIL.sub(_email, text)
    text = _URLSAFE_RUN.sub(lambda m: TOKEN if _looks_random(m.group(0)) else m.group(0), text)
    text = _CARD.sub(_card, text)
    return text


def scrub_value(value: Any) -> Any:
    """Recursively scrubs a JSON-like value; a sensitive key hides its whole subtree."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            scrub_text(str(key)): REDACTED if is_sensitive_key(str(key)) else scrub_value(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub_value(item) for item in value]
    return value
