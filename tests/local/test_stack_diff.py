"""`envsync-local diff`: Sceptre's own difflib differ, reduced to the changed lines per stack."""

from __future__ import annotations

import json

from sceptre.diffing.stack_differ import DifflibStackDiffer, StackConfiguration, StackDiff

from envsync_tools.stack_diff import changed_lines, differs, summary


def stack_diff(name: str, deployed_schedule: str, generated_schedule: str, template_change: bool) -> StackDiff:
    """A StackDiff as Sceptre's difflib differ makes it for a sync stack of ~200 template lines."""
    differ = DifflibStackDiffer(False)

    def config(schedule: str) -> StackConfiguration:
        return StackConfiguration(stack_name=name, parameters={"Env": "staging", "ScheduleExpression": schedule},
                                  stack_tags={"Project": "envsync"}, notifications=[],
                                  cloudformation_service_role="arn:aws:iam::222222222222:role/envsync-cfn-exec")

    resources = {f"Resource{i}": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"t{i}"}} for i in range(40)}
    deployed = json.dumps({"Resources": resources}, indent=2)
    resources["Resource7"]["Properties"]["TopicName"] = "renamed" if template_change else "t7"
    generated = json.dumps({"Resources": resources}, indent=2)
    return StackDiff(name, differ.compare_templates(deployed, generated),
                     differ.compare_stack_configurations(config(deployed_schedule), config(generated_schedule)),
                     True, config(generated_schedule), generated)


def test_only_changed_lines_per_stack_are_printed() -> None:
    changed = stack_diff("staging/sync", "rate(15 minutes)", "rate(30 minutes)", template_change=True)
    same = stack_diff("staging/network", "rate(15 minutes)", "rate(15 minutes)", template_change=False)
    assert len("\n".join(changed.template_diff)) > 200  # Sceptre's diff carries context and headers
    text = summary([same, changed])
    assert text.splitlines()[0] == "staging/network: no difference"
    assert "staging/sync: 4 changed lines" in text
    assert "  config   -  ScheduleExpression: rate(15 minutes)" in text
    assert "  config   +  ScheduleExpression: rate(30 minutes)" in text
    template = [line.split(None, 2) for line in text.splitlines() if line.startswith("  template ")]
    assert [(sign, change.strip()) for _, sign, change in template] == [
        ("-", '"TopicName": "t7"'), ("+", '"TopicName": "renamed"')]
    assert "Resource8" not in text and "+++" not in text and "---" not in text
    assert differs(changed) and not differs(same)


def test_a_stack_not_yet_deployed_is_said_so() -> None:
    new = StackDiff("qa/sync", [], [], False, None, "")
    assert summary([new]) == "qa/sync: not deployed (launch creates it)" and differs(new)
    assert changed_lines(["--- deployed", "+++ generated", "@@ -1 +1 @@", " same", "-old", "+new"]) == ["-old", "+new"]
