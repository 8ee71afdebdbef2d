"""`envsync push --env ENV FILE...`: put migration scripts into the env's bucket, checked first.

Nothing is uploaded unless every file passes: its name is `V<version>__<description>.sql`, its
text splits (the checks the engine makes when it loads a script), no two files share a version,
a version the bucket holds under another name is refused, and a new version must come after
every version the bucket holds (the engine refuses a script older than the latest applied one).
A file whose name the bucket holds with the same checksum (recorded by the push that uploaded
it) is left as it is; otherwise it is refused unless `replace` says it fixes a failed script in
place (README: Repairing a failed migration, case 1): an applied script must never change, and
validate refuses one that did. The bucket is read by listing and HeadObject only: its scripts
are encrypted with the env key, which the uploader may encrypt with but not decrypt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from envsync.errors import EnvsyncError
from envsync.migrations.scripts import SCRIPT_NAME, Script, ScriptError, load_script, sort_scripts, version_key

PREFIX = "migrations/"
CHECKSUM_META = "envsync-sha256"  # x-amz-meta-envsync-sha256: the checksum of what push uploaded


class PushError(EnvsyncError, ValueError):
    """A file may not go into the bucket; the message names each file and why."""


@dataclass(frozen=True)
class Pushed:
    name: str
    action: str  # uploaded | unchanged
    version_id: str = ""


@dataclass(frozen=True)
class Held:
    """A script the bucket holds: read from the listing and HeadObject only, which decrypt
    nothing (the uploader may encrypt into the bucket's key, not read scripts back)."""

    name: str
    key: Tuple[int, ...]
    checksum: Optional[str] = None  # what `push` recorded (object metadata), if it uploaded it


def bucket_name(env: str, account_id: str) -> str:
    """The env's migration bucket (named so by the sync stack)."""
    return f"envsync-{env}-migrations-{account_id}"


def held_scripts(s3: Any, bucket: str, names: Sequence[str]) -> List[Held]:
    """The bucket's scripts; for the ones named in `names`, the checksum `push` recorded."""
    held = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for item in page.get("Contents", []):
            name = item["Key"][len(PREFIX):]
            match = SCRIPT_NAME.match(name)
            if "/" in name or not match:
                continue  # not a script of ours: the engine names it when it reads the bucket
            recorded = None
            if name in names:
                recorded = s3.head_object(Bucket=bucket, Key=item["Key"]).get("Metadata", {}).get(CHECKSUM_META)
            held.append(Held(name, version_key(match.group("version")), recorded))
    return held


def check(files: Sequence[Path], held: Sequence[Held], replace: bool) -> List[Script]:
    """The scripts to upload (files already held unchanged left out); PushError with every problem."""
    problems: List[str] = []
    scripts: List[Script] = []
    for path in sorted(files, key=lambda path: path.name):  # messages in one order, whatever the shell's
        try:
            scripts.append(load_script(path.name, path.read_bytes()))
        except ScriptError as error:
            problems.append(str(error))
        except OSError as error:
            problems.append(f"{path}: {error.strerror}")
    try:
        sort_scripts(scripts)
    except ScriptError as error:
        problems.append(str(error))
    by_name = {script.name: script for script in held}
    by_version = {script.key: script for script in held}
    latest = max(held, key=lambda script: script.key, default=None)
    upload = []
    for script in scripts:
        same = by_name.get(script.name)
        if same is not None:
            if same.checksum == script.checksum:
                continue
            if not replace:
                what = (f"other content (checksum {same.checksum[:12]}…, yours {script.checksum[:12]}…)"
                        if same.checksum else "content envsync push did not upload (its checksum is unknown)")
                problems.append(f"{script.name}: the bucket holds it with {what}; an applied script must never "
                                "change: put the change in a new version, or give --replace to fix a failed "
                                "script in place")
                continue
        elif script.key in by_version:
            problems.append(f"{script.name}: version {script.version} is already {by_version[script.key].name}")
            continue
        elif latest is not None and script.key < latest.key:
            problems.append(f"{script.name}: older than {latest.name}, which the bucket already holds; the "
                            "engine refuses a new script before the latest version: give it a later version")
            continue
        upload.append(script)
    if problems:
        raise PushError("nothing uploaded:\n  " + "\n  ".join(problems))
    return upload


def push(s3: Any, bucket: str, files: Sequence[Path], replace: bool = False) -> List[Pushed]:
    """Check `files` against what the bucket holds, then upload them as they are (their bytes),
    each with its checksum as metadata (what the next push compares)."""
    held = held_scripts(s3, bucket, [path.name for path in files])
    upload = {script.name: script for script in check(files, held, replace)}
    results = []
    for path in sorted(files, key=lambda path: path.name):
        if path.name not in upload:
            results.append(Pushed(path.name, "unchanged"))
            continue
        response = s3.put_object(Bucket=bucket, Key=PREFIX + path.name, Body=path.read_bytes(),
                                 Metadata={CHECKSUM_META: upload[path.name].checksum})
        results.append(Pushed(path.name, "uploaded", str(response.get("VersionId") or "")))
    return results
