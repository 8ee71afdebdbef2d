"""Every console entry point ends quietly when the reader of its output leaves (`... | head`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

from tests.conftest import PROJECT_ROOT


def console_scripts():
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]


# Commands that print without stand-ins or a database (a JSON error goes to stdout too).
COMMANDS = {"envsync": [["--json", "status", "--target", "mysql://root:@127.0.0.1:1/app"]],
            "envsync-local": [["status"], ["cost", "--markdown"]],
            "envsync-stack-diff": [["--help"]],
            "envsync-rehearse": [["--project", str(PROJECT_ROOT)]]}


def test_every_console_script_is_covered_here():
    assert set(console_scripts()) == set(COMMANDS)


@pytest.mark.parametrize("script,arguments", [(s, a) for s, commands in COMMANDS.items() for a in commands])
def test_a_closed_pipe_ends_the_command_quietly(script, arguments, tmp_path):
    module, function = console_scripts()[script].split(":")
    entry = f"import sys; from {module} import {function} as main; sys.exit(main())"
    process = subprocess.Popen([sys.executable, "-c", entry, *arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, "ENVSYNC_LOCAL_DIR": str(tmp_path)})
    process.stdout.close()  # the reader leaves before the first line is written
    stderr = process.stderr.read().decode()
    # argparse's --help swallows the pipe's error itself (exit 0); everything else exits as cat would
    assert process.wait(timeout=120) == (0 if "--help" in arguments else 141), stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
