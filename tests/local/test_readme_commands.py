"""Every command in README's shell blocks is one the project accepts as written.

`envsync` and `envsync-local` lines are parsed by the commands' own argument parsers (a removed
subcommand or a renamed flag fails here, not in a user's terminal); `make` lines name targets
the Makefile has; `sceptre` lines through `envsync-local sceptre` name stacks or env folders
that exist under config/. Placeholders (`<run id>`) take a value, `[--optional]` parts are
checked too. Running them is what `make local`, the lifecycle test and the e2e suite do.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import List

import pytest

from envsync.cli.main import build_parser as envsync_parser
from envsync_local.cli import build_parser as local_parser
from tests.conftest import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def shell_lines() -> List[str]:
    """Each command line of README's ```bash blocks, comments and blank lines left out."""
    lines, inside = [], False
    for raw in README.read_text().splitlines():
        if raw.startswith("```"):
            inside = raw.strip() == "```bash"
            continue
        line = raw.split("  #", 1)[0].strip()
        if inside and line and not line.startswith("#"):
            lines.append(line)
    return lines


def words(line: str) -> List[str]:
    line = re.sub(r"<[^>]+>", "example", line)  # a placeholder takes a value
    line = re.sub(r"\[([^\]]+)\]", r"\1", line)  # an optional part is checked as well
    return shlex.split(line)


LINES = shell_lines()


def test_readme_has_the_commands_this_test_reads():
    programs = {Path(words(line)[0]).name for line in LINES}
    assert {"make", "envsync", "envsync-local"} <= programs, programs


@pytest.mark.parametrize("line", [line for line in LINES if Path(words(line)[0]).name in ("envsync", "envsync-local")])
def test_each_envsync_command_parses(line):
    argv = words(line)
    parser = envsync_parser() if Path(argv[0]).name == "envsync" else local_parser()
    try:
        args = parser.parse_args(argv[1:])
    except SystemExit as exit_:
        raise AssertionError(f"README: `{line}` is not a valid command line") from exit_
    if getattr(args, "command", None) == "sceptre":
        sceptre_args = [a for a in args.sceptre_args if not a.startswith("-") and a not in ("difflib",)]
        path = sceptre_args[-1]
        assert (PROJECT_ROOT / "config" / path).exists(), f"README: `{line}`: no config/{path}"


@pytest.mark.parametrize("line", [line for line in LINES if words(line)[0] == "make"])
def test_each_make_target_exists(line):
    target = words(line)[1]
    listed = subprocess.run(["make", "-C", str(PROJECT_ROOT), "-n", "-p", "-f", "Makefile", ".DEFAULT"],
                            capture_output=True, text=True, check=False).stdout
    assert re.search(rf"^{re.escape(target)}:", listed, re.M), f"README: `{line}`: no make target {target}"
