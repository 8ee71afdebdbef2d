"""`sceptre diff` that a person reads: only the changed lines, per stack.

Sceptre's difflib diff prints, per stack, a banner, both configurations and the unified diff
with its context: kilobytes for a one-line change. This runs the same differ (Sceptre's own
`DifflibStackDiffer`, through its Python API) and keeps what changed. Like `sceptre diff`, it
reads the deployed stacks with each stack's `sceptre_role`: offline `envsync-local diff` points
it at the stand-ins; against AWS it needs the deployer's credentials.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from sceptre.cli.diff import filter_plan_for_launchable  # what `sceptre diff` itself diffs
from sceptre.context import SceptreContext
from sceptre.diffing.stack_differ import DifflibStackDiffer
from sceptre.plan.plan import SceptrePlan

from envsync.cli.main import quiet_when_the_reader_leaves

# The unified diff's file headers, not changes.
_HEADERS = ("+++", "---")


def changed_lines(diff: Sequence[str]) -> List[str]:
    """The added and removed lines of a unified diff (context and headers dropped)."""
    return [line.rstrip("\n") for line in diff if line[:1] in "+-" and not line.startswith(_HEADERS)]


def differs(diff: Any) -> bool:
    """Whether a launch would change the stack (or create it)."""
    return not diff.is_deployed or bool(changed_lines(diff.config_diff) or changed_lines(diff.template_diff))


def summary(diffs: Sequence[Any]) -> str:
    """One block per stack that differs, one line per stack that does not (diffs: Sceptre's
    StackDiff: stack_name, config_diff, template_diff, is_deployed)."""
    lines: List[str] = []
    for diff in sorted(diffs, key=lambda d: d.stack_name):
        if not diff.is_deployed:
            lines.append(f"{diff.stack_name}: not deployed (launch creates it)")
            continue
        config, template = changed_lines(diff.config_diff), changed_lines(diff.template_diff)
        if not config and not template:
            lines.append(f"{diff.stack_name}: no difference")
            continue
        lines.append(f"{diff.stack_name}: {len(config) + len(template)} changed lines")
        lines += [f"  config   {line}" for line in config]
        lines += [f"  template {line}" for line in template]
    return "\n".join(lines)


def diff_stacks(project: Path, command_path: str) -> Dict[str, Any]:
    """Sceptre's difflib StackDiff of every launchable stack under command_path ('staging',
    'staging/sync.yaml'), keyed by stack name."""
    plan = SceptrePlan(SceptreContext(project_path=str(project), command_path=command_path))
    filter_plan_for_launchable(plan)
    return {stack.name: diff for stack, diff in plan.diff(DifflibStackDiffer(False)).items()}


def print_diff(project: Path, command_path: str) -> int:
    """Print the summary of command_path's stacks; 1 when a stack differs (a launch would change it)."""
    diffs = list(diff_stacks(project, command_path).values())
    print(summary(diffs))
    return 1 if any(differs(diff) for diff in diffs) else 0


@quiet_when_the_reader_leaves
def main(argv: Optional[Sequence[str]] = None) -> int:
    """`envsync-stack-diff ENV|ENV/STACK.yaml [--project DIR]`: exit 1 when a stack differs."""
    parser = argparse.ArgumentParser(prog="envsync-stack-diff", description=__doc__.split("\n", 1)[0])
    parser.add_argument("path", help="an env (prod) or one stack (prod/aurora.yaml)")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the Sceptre project (default: here)")
    args = parser.parse_args(argv)
    return print_diff(args.project, args.path)


if __name__ == "__main__":
    sys.exit(main())
