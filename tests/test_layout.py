"""The layout explains the architecture (docs/ARCHITECTURE.md §3-§6), and an install carries all of it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import PROJECT_ROOT

SOURCE_ROOTS = ("lambda_code", "hooks", "local", "tools")
# The engine's top level holds only what every capability uses; the rest sits in a capability folder.
ENGINE_TOP_LEVEL = {"__init__.py", "aws.py", "errors.py", "observability.py"}


def packages_in_tree() -> set:
    found = set()
    for root in SOURCE_ROOTS:
        for init in (PROJECT_ROOT / root).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(PROJECT_ROOT / root).parts))
    return found


def test_engine_modules_sit_in_capability_folders() -> None:
    engine = PROJECT_ROOT / "lambda_code" / "envsync"
    loose = {path.name for path in engine.glob("*.py")} - ENGINE_TOP_LEVEL
    assert not loose, f"engine modules outside a capability folder: {sorted(loose)} (docs/ARCHITECTURE.md §3)"
    for folder in (path for path in engine.iterdir() if path.is_dir() and path.name not in ("__pycache__", "certs")):
        assert (folder / "__init__.py").is_file(), f"{folder} is not a package"
        assert folder.name in (PROJECT_ROOT / "docs" / "ARCHITECTURE.md").read_text(), \
            f"capability folder {folder.name}/ is not described in docs/ARCHITECTURE.md"


def test_comments_point_only_at_documents_in_the_repository() -> None:
    tracked = subprocess.run(["git", "-C", str(PROJECT_ROOT), "ls-files", "*.py", "*.md", "*.j2"],
                             capture_output=True, text=True, check=True).stdout.split()
    # a section cited without its path (`docs/ARCHITECTURE.md §N` is the form that resolves)
    bare_citation = re.compile(r"(?<![/\w])ARCHITECTURE(?:\.md)? §")
    dangling = [name for name in tracked if bare_citation.search((PROJECT_ROOT / name).read_text(errors="replace"))]
    assert not dangling, f"comments cite a section of a document not in the repo: {dangling}"
    assert (PROJECT_ROOT / "docs" / "ARCHITECTURE.md").is_file()


def test_a_built_wheel_carries_every_package_and_its_data(tmp_path: Path) -> None:
    # What a non-editable `pip install .` installs is the wheel: every package of the tree must be in it.
    # Built from a copy, so setuptools' build/ folder does not land in the checkout.
    source = tmp_path / "source"
    for root in SOURCE_ROOTS:
        shutil.copytree(PROJECT_ROOT / root, source / root, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("envsync-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    in_wheel = {name.rsplit("/", 1)[0].replace("/", ".") for name in names if name.endswith("/__init__.py")}
    assert packages_in_tree() <= in_wheel, f"packages missing from the wheel: {sorted(packages_in_tree() - in_wheel)}"
    assert {"envsync_tools/prices.yaml", "envsync_tools/proof/must_stay_denied.yaml",
            "envsync_tools/proof/analyser_findings.yaml"} <= names
    entry_points = next(zipfile.ZipFile(wheel).read(name).decode() for name in names
                        if name.endswith("entry_points.txt"))
    for target in ("envsync.cli.main:main", "envsync_local.cli:main", "envsync_tools.stack_diff:main",
                   "envsync_tools.rehearse:main",
                   "envsync_sceptre.hooks.validate:"):
        assert target in entry_points


def test_every_module_of_the_proof_is_described() -> None:
    """docs/ARCHITECTURE.md §5 names each module of the static proof, and no shipped module
    reaches into the test suite (the rehearsal runs from an install, without tests/)."""
    text = (PROJECT_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text[text.index("## 5."):text.index("## 6.")]
    proof = PROJECT_ROOT / "tools" / "envsync_tools" / "proof"
    undescribed = [path.stem for path in proof.glob("*.py")
                   if path.stem != "__init__" and f"`{path.stem}`" not in section]
    assert not undescribed, f"proof modules not described in docs/ARCHITECTURE.md §5: {undescribed}"
    for root in SOURCE_ROOTS:
        for path in (PROJECT_ROOT / root).rglob("*.py"):
            assert not re.search(r"^\s*(from|import) tests\b", path.read_text(), re.MULTILINE), \
                f"{path.relative_to(PROJECT_ROOT)} imports the test suite"
