"""`{{placeholder}}` templates: validated when saved, rendered per lead.

The syntax is deliberately tiny (a name, optionally dotted) so that an operator's
typo is caught on save instead of mailing a literal '{{firstNmae' to a customer.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Mapping

from shared.errors import DomainError

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_PLACEHOLDER = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
_ANY_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


@dataclass(frozen=True)
class SyntaxProblem:
    position: int
    message: str


class MissingVariables(DomainError):
    """A lead lacks what the template needs: a permanent failure for that lead."""

    code = "missing_variables"

    def __init__(self, names: list[str]):
        super().__init__(f"missing template variables: {', '.join(names)}")
        self.names = names


def problems(text: str) -> list[SyntaxProblem]:
    """Every malformed placeholder in `text`, with where it starts."""
    found = []
    for match in _ANY_TAG.finditer(text):
        if not _PLACEHOLDER.fullmatch(match.group(0)):
            found.append(
                SyntaxProblem(match.start(), f"'{match.group(0)[:40]}' is not a placeholder like {{{{firstName}}}}")
            )
    stripped = _ANY_TAG.sub(lambda m: " " * len(m.group(0)), text)
    for marker, what in (("{{", "opened but never closed"), ("}}", "closed but never opened")):
        index = stripped.find(marker)
        if index >= 0:
            found.append(SyntaxProblem(index, f"'{marker}' at position {index} is {what}"))
    return sorted(found, key=lambda p: p.position)


def variables(text: str) -> list[str]:
    return sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)})


def lead_variables(lead: Mapping[str, Any]) -> dict[str, Any]:
    """A lead's custom `fields` are addressable both as `{{industry}}` and `{{fields.industry}}`;
    the lead's own columns win a name clash."""
    flat: dict[str, Any] = dict(lead.get("fields") or {})
    flat.update({k: v for k, v in lead.items() if k != "fields"})
    flat["fields"] = lead.get("fields") or {}
    return flat


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    current: Any = values
    for part in name.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def render(text: str, values: Mapping[str, Any], escape: bool = False) -> str:
    """Fills every placeholder or raises MissingVariables naming each absent or empty one."""
    missing = [n for n in variables(text) if _lookup(values, n) in (None, "")]
    if missing:
        raise MissingVariables(missing)

    def fill(match: re.Match[str]) -> str:
        value = str(_lookup(values, match.group(1)))
        return html.escape(value) if escape else value

    return _PLACEHOLDER.sub(fill, text)
