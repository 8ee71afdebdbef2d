"""Every rendered template of every env passes cfn-lint with zero errors, and with no warning
but the one that must be there: W1030 on each Lambda function while its runtime is deprecated.

cfn-lint resolves `Runtime: !Ref LambdaRuntime` to the parameter's default (python3.9, the
seed's runtime) and compares it with its own copy of AWS's runtime table; that warning stays on
and is accepted only for the functions, only with the dates of envsync's lifecycle table. The
same templates with a current runtime lint clean.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Dict, List

from cfnlint.api import ManualArgs, lint

from envsync_sceptre.config.lifecycle import LAMBDA_RUNTIMES
from tests.chain import chain

DEFAULT_RUNTIME = re.compile(r"(?m)^(  LambdaRuntime:\n    Type: String\n    Default: )python3\.9$")


def findings(body: str) -> List[str]:
    return [f"{m.rule.id} {m.message} (line {m.linenumber})"
            for m in lint(body, config=ManualArgs(regions=["us-east-1"]))]


def functions(body: str) -> int:
    return sum(1 for line in body.splitlines() if line.strip() == "Type: AWS::Lambda::Function")


def test_every_rendered_template_is_lint_clean_but_for_the_deprecated_runtime(rendered_bodies: Dict[str, str]):
    assert {name.split("/")[0] for name in rendered_bodies} == set(chain())
    dates = LAMBDA_RUNTIMES["python3.9"]
    assert dates.deprecated <= date.today(), "python3.9 is no longer deprecated? update the lifecycle table"
    expected = (f"Runtime {{'Ref': 'LambdaRuntime'}} was deprecated on '{dates.deprecated}'. Creation was "
                f"disabled on '{dates.create_blocked}' and update on '{dates.update_blocked}'.")
    unexpected, runtime_warnings = {}, {}
    for name, body in sorted(rendered_bodies.items()):
        found = findings(body)
        runtime_warnings[name] = [f for f in found if f.startswith("W1030 ") and expected in f]
        others = [f for f in found if f not in runtime_warnings[name]]
        if others:
            unexpected[name] = others
        assert len(runtime_warnings[name]) == functions(body), (name, runtime_warnings[name])
    assert not unexpected, unexpected
    # The functions live in the aurora and sync stacks of every env.
    assert sorted(name for name, found in runtime_warnings.items() if found) == [
        f"{env}/{stack}" for env in ("dev", "prod", "staging") for stack in ("aurora", "sync")]


def test_with_a_current_runtime_the_same_templates_lint_clean(rendered_bodies: Dict[str, str]):
    for name in ("prod/aurora", "dev/sync"):
        body = rendered_bodies[name]
        assert DEFAULT_RUNTIME.search(body), f"{name}: LambdaRuntime's default is not python3.9"
        current = DEFAULT_RUNTIME.sub(r"\g<1>python3.12", body)
        assert findings(current) == [], name
