"""Every rendered template of every env passes cfn-lint with zero errors and zero warnings."""

from __future__ import annotations

from cfnlint.api import ManualArgs, lint


def test_every_rendered_template_is_lint_clean(rendered_bodies):
    assert {name.split("/")[0] for name in rendered_bodies} == {"dev", "staging", "prod"}
    findings = {}
    for name, body in sorted(rendered_bodies.items()):
        matches = lint(body, config=ManualArgs(regions=["us-east-1"]))
        if matches:
            findings[name] = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches]
    assert not findings, findings
