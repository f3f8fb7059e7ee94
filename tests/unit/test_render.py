"""Template placeholders: validated on save, rendered per lead."""

from __future__ import annotations

import pytest

from shared.outreach import render


@pytest.mark.parametrize(
    "text",
    ["Hi {{firstName}}", "Hi {{ firstName }}, from {{company}}", "{{fields.industry}}", "no placeholders", "a { b } c"],
)
def test_valid_texts_have_no_problems(text):
    assert render.problems(text) == []


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("Hi {{firstName", "never closed"),
        ("Hi firstName}}", "never opened"),
        ("Hi {{first name}}", "is not a placeholder"),
        ("Hi {{}}", "is not a placeholder"),
        ("Hi {{1abc}}", "is not a placeholder"),
        ("Hi {{a|upper}}", "is not a placeholder"),
    ],
)
def test_malformed_placeholders_are_reported(text, fragment):
    found = render.problems(text)
    assert found and fragment in found[0].message


def test_render_fills_standard_and_custom_fields():
    lead = {"firstName": "Ada", "company": "Acme", "fields": {"industry": "Looms"}}
    values = render.lead_variables(lead)
    text = "{{firstName}} at {{ company }} ({{industry}}/{{fields.industry}})"
    assert render.render(text, values) == "Ada at Acme (Looms/Looms)"


def test_render_names_every_missing_variable():
    with pytest.raises(render.MissingVariables) as caught:
        render.render("{{firstName}} {{lastName}} {{company}}", render.lead_variables({"firstName": "Ada", "lastName": ""}))
    assert caught.value.names == ["company", "lastName"]


def test_render_escapes_for_html_only_when_asked():
    values = {"firstName": "<b>Ada</b>"}
    assert render.render("{{firstName}}", values) == "<b>Ada</b>"
    assert render.render("{{firstName}}", values, escape=True) == "&lt;b&gt;Ada&lt;/b&gt;"


def test_variables_lists_each_name_once():
    assert render.variables("{{a}} {{ b }} {{a}}") == ["a", "b"]
