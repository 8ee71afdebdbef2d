"""One Lambda runtime value (`lambda_runtime`, e.g. python3.12) and everything derived from it.

The functions' `Runtime`, the wheels the package is built from (pip's --python-version and
--platform, the tags a wheel must carry), the markers the package's dependencies are
evaluated for, and the interpreter offline functions run on all come from `describe(name)`,
so switching the runtime is one config value. Stdlib only: the Makefile calls it
(`python -m envsync_sceptre.config.runtime ...`) to learn which venvs and wheels to build.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from envsync_sceptre.config.lifecycle import LAMBDA_RUNTIMES

PROJECT_ROOT = Path(__file__).resolve().parents[3]
NAME = re.compile(r"^python3\.(\d{1,2})$")
# Lambda's Python runtimes up to 3.11 run on Amazon Linux 2 (glibc 2.26), 3.12 and later on
# Amazon Linux 2023 (glibc 2.34): https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
AL2023_FROM = 12
PLATFORM = "manylinux2014_x86_64"
# Where `make` finds an interpreter of a version (pyenv first, then the system's).
INTERPRETER_GLOBS = ("{home}/.pyenv/versions/{v}*/bin/python{v}", "/usr/local/bin/python{v}", "/usr/bin/python{v}")


class UnknownRuntime(ValueError):
    """Not a Lambda Python runtime this project knows (the message names the known ones)."""


@dataclass(frozen=True)
class Runtime:
    """What a Lambda Python runtime means for the package and for offline runs."""

    name: str  # the Lambda identifier, python3.12
    minor: int  # 12

    @property
    def version(self) -> str:
        """`3.12`: pip's --python-version and the markers' python_version."""
        return f"3.{self.minor}"

    @property
    def python_tag(self) -> str:
        """`cp312`: the wheel tag of a compiled extension for this runtime."""
        return f"cp3{self.minor}"

    @property
    def glibc(self) -> Tuple[int, int]:
        return (2, 34) if self.minor >= AL2023_FROM else (2, 26)

    @property
    def platform(self) -> str:
        return PLATFORM

    @property
    def venv_dir(self) -> str:
        """`.venv312`: the offline functions' interpreter and the engine tests' venv."""
        return f".venv3{self.minor}"

    @property
    def wheels_dir(self) -> str:
        """`.lambda-wheels/python3.12`: the package's dependencies as wheels for this runtime."""
        return f".lambda-wheels/{self.name}"

    def pip_download_args(self) -> List[str]:
        """The `pip download` options that fetch wheels this runtime imports.

        Lambda keeps a runtime on the latest patch release, so the version pip resolves for is a
        late patch: a bare `3.9` means 3.9.0 to pip, which cryptography's Requires-Python
        (`!=3.9.0,!=3.9.1`) excludes.
        """
        return ["--only-binary=:all:", "--platform", self.platform, "--python-version", f"{self.version}.99",
                "--implementation", "cp"]

    def accepts_wheel(self, filename: str) -> bool:
        """`name-version-python-abi-platform.whl` whose tags this runtime imports."""
        parts = filename[: -len(".whl")].split("-")
        if not filename.endswith(".whl") or len(parts) < 5:
            return False
        pythons, abi, platforms = set(parts[-3].split(".")), parts[-2], parts[-1].split(".")
        if abi == "abi3":  # stable ABI: built for 3.N, loads on 3.N and later
            python_ok = any(p.startswith("cp3") and p[3:].isdigit() and int(p[3:]) <= self.minor for p in pythons)
        else:
            python_ok = abi in ("none", self.python_tag) and bool(pythons & {"py3", "py2", self.python_tag})
        return python_ok and any(self._platform_ok(p) for p in platforms)

    def _platform_ok(self, platform: str) -> bool:
        if platform in ("any", PLATFORM):
            return True
        match = re.match(r"^manylinux_(\d+)_(\d+)_x86_64$", platform)
        return bool(match) and (int(match.group(1)), int(match.group(2))) <= self.glibc

    def interpreter(self) -> Optional[str]:
        """A local `python3.N` to build the venv with (pyenv's, else the system's)."""
        for pattern in INTERPRETER_GLOBS:
            found = sorted(glob.glob(pattern.format(home=os.path.expanduser("~"), v=self.version)))
            if found:
                return found[-1]
        return None


def describe(name: str) -> Runtime:
    """The runtime description of a Lambda runtime identifier; refuses unknown ones."""
    match = NAME.match(str(name))
    if not match or str(name) not in LAMBDA_RUNTIMES:
        raise UnknownRuntime(f"lambda_runtime '{name}' is not a supported Lambda runtime "
                            f"(supported: {', '.join(supported())})")
    return Runtime(name=str(name), minor=int(match.group(1)))


def supported() -> List[str]:
    """The runtimes the lifecycle table knows, oldest first."""
    return sorted(LAMBDA_RUNTIMES, key=lambda name: int(NAME.match(name).group(1)))  # type: ignore[union-attr]


def configured(config_dir: Path) -> List[Runtime]:
    """Every `lambda_runtime` of config/config.yaml and config/<env>/config.yaml (an upgrade
    may run two at once), oldest first."""
    from envsync_sceptre.config.envconfig import read_env_files, read_shared_values

    names = set()
    for values in [read_shared_values(config_dir), *read_env_files(config_dir).values()]:
        if values.get("lambda_runtime"):
            names.add(str(values["lambda_runtime"]))
    return sorted((describe(name) for name in names), key=lambda runtime: runtime.minor)


def _make_targets(runtimes: Iterable[Runtime]) -> List[str]:
    return [target for runtime in runtimes
            for target in (f"{runtime.venv_dir}/.installed", f"{runtime.wheels_dir}/.downloaded")]


def main(argv: Optional[List[str]] = None) -> int:
    """For the Makefile: `targets CONFIG_DIR|RUNTIME...`, `pip-args RUNTIME`, `interpreter VERSION`, `ends`."""
    parser = argparse.ArgumentParser(prog="python -m envsync_sceptre.config.runtime")
    parser.add_argument("command", choices=("targets", "pip-args", "interpreter", "ends"))
    parser.add_argument("values", nargs="*", default=[str(PROJECT_ROOT / "config")])
    args = parser.parse_args(argv)
    args.value = args.values[0] if args.values else ""
    try:
        if args.command == "targets":  # what the configured (or the named) runtimes need built
            named = Path(args.value).is_dir()
            runtimes = configured(Path(args.value)) if named else [describe(name) for name in args.values]
            print(" ".join(_make_targets(runtimes)))
        elif args.command == "pip-args":
            print(" ".join(describe(args.value).pip_download_args()))
        elif args.command == "ends":  # the oldest and newest supported Python (CI tests both)
            print(describe(supported()[0]).version, describe(supported()[-1]).version)
        else:
            runtime = describe(f"python{args.value}")
            found = runtime.interpreter()
            if not found:
                print(f"Python {runtime.version} not found: install it (pyenv install {runtime.version})",
                      file=sys.stderr)
                return 1
            print(found)
    except ValueError as error:  # an unknown runtime, an unreadable config file
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
