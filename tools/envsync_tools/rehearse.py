"""`envsync-rehearse`: the permission proof over the project as it would be deployed, before the
first deploy and without AWS credentials.

Renders every stack of every env with the account ids from `config/` (Sceptre's renderer,
resolvers that need AWS replaced by well-formed stand-ins: `envsync_tools.proof.project`), then
runs, per env, the static proof (every call of the launch allowed), who may assume what (the
launch as the CI principal), the must-stay-denied list, and once the analysers over every
policy; and prints the principals the user creates by hand with the exact policy each needs.
Exit 1 on any finding.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from envsync.cli.main import quiet_when_the_reader_leaves
from envsync.cli.runs import WAIT_FOR_TASK_TOKEN, waiting_states
from envsync_sceptre.config.envconfig import promotion_order
from envsync_tools.proof.analysers import analyse, load_reviewed, rendered_policies, unreviewed
from envsync_tools.proof.assume import (
    launch_assumptions,
    outside_principals,
    refused_approver_assumptions,
    refused_assumptions,
)
from envsync_tools.proof.driver import static_findings
from envsync_tools.proof.must_stay_denied import must_stay_denied
from envsync_tools.proof.project import EnvStacks, load_project


@dataclass
class Rehearsal:
    lines: List[str] = field(default_factory=list)
    findings: List[str] = field(default_factory=list)


def _principal_lines(env_stacks: EnvStacks, env: str) -> List[str]:
    """The principals made by hand, with what they need in this env."""
    account = env_stacks.account(env)
    lines = []
    for outsider in outside_principals(env_stacks):
        roles = [role for role in outsider.policy["Statement"][0]["Resource"] if f"::{account}:" in role]
        lines += [f"    {outsider.name} ({outsider.arn}): sts:AssumeRole on {role}" for role in roles]
    return lines


def gate_said(env_stacks: EnvStacks, env: str) -> Tuple[str, List[str]]:
    """Whether the env's machine waits for a person, from the administrator's gate stack as
    rendered (what `envsync status` reads from the deployed definition later)."""
    if f"{env}/gate" not in env_stacks.rendered:
        return "approval gate: none (the env waits for no one)", []
    machines = env_stacks.evaluated(f"{env}/gate").of_type("AWS::StepFunctions::StateMachine")
    waits = [state for machine in machines.values()
             for state in waiting_states(json.loads(machine["Properties"]["DefinitionString"]))]
    if not waits:
        return "approval gate: MISSING", [
            f"[{env}] the gate stack's machine waits for no one (no {WAIT_FOR_TASK_TOKEN} state)"]
    return f"approval gate: the administrator's machine waits in {', '.join(waits)}", []


def rehearse(env_stacks: EnvStacks) -> Rehearsal:
    result = Rehearsal()
    for env in promotion_order(env_stacks.envs):
        static = [str(finding) for finding in static_findings(env_stacks, env)]
        refused = [str(refusal) for refusal in refused_assumptions(env_stacks, env)]
        denied = must_stay_denied(env_stacks, env)
        leaks = [str(leak) for leak in denied.leaks]
        stacks = sum(1 for name in env_stacks.rendered if name.startswith(f"{env}/"))
        assumed = len(launch_assumptions(env_stacks, env, outside_principals(env_stacks)[0].arn))
        line = (f"{env} (account {env_stacks.account(env)}, {stacks} stacks): static proof {len(static)} denied; "
                f"launch as the CI principal: {assumed - len(refused)}/{assumed} AssumeRole allowed; "
                f"{denied.refused} must-stay-denied refused")
        if denied.open_leaks:
            line += f", {len(denied.open_leaks)} allowed and listed open"
        gate, gate_findings = gate_said(env_stacks, env)
        line += f"; {gate}"
        result.findings += gate_findings
        result.lines += [line, "  create by hand:", *_principal_lines(env_stacks, env)]
        result.findings += static + refused + leaks
    result.findings += [str(refusal) for refusal in refused_approver_assumptions(env_stacks)]
    policies = rendered_policies(env_stacks)
    found = analyse(policies)
    open_findings, stale = unreviewed(found, load_reviewed())
    result.lines.append(f"analysers (cloudsplaining, parliament): {len(policies)} policies, {len(found)} findings, "
                        f"{len(found) - len(open_findings)} reviewed, {len(open_findings)} new")
    result.findings += [f"analyser: {finding}" for finding in open_findings]
    result.findings += [f"analyser_findings.yaml entry matches nothing any more: {entry}" for entry in stale]
    result.lines.append("policies to attach (one per principal, every env):")
    for outsider in outside_principals(env_stacks):
        result.lines.append(f"  {outsider.name} ({outsider.arn}), {outsider.why}:")
        result.lines.append(f"    {json.dumps(outsider.policy, separators=(',', ':'))}")
    return result


@quiet_when_the_reader_leaves
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="envsync-rehearse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=Path.cwd(),
                        help="the Sceptre project (config/ and templates/); default: this directory")
    args = parser.parse_args(argv)
    if not (args.project / "config").is_dir():
        print(f"envsync-rehearse: {args.project} has no config/ (run it in the project, or pass --project)",
              file=sys.stderr)
        return 2
    result = rehearse(load_project(args.project.resolve()))
    print("\n".join(result.lines))
    if result.findings:
        print(f"\n{len(result.findings)} finding(s): fix them before the first deploy", file=sys.stderr)
        print("\n".join(result.findings), file=sys.stderr)
        return 1
    print("rehearsal passed: nothing the first deploy would be refused, nothing that must stay denied allowed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
