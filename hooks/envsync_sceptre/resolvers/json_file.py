"""`!envsync_json_file <path> [<part>/<parts>]`: a JSON file (the Step Functions definition)
checked and minified into parameter strings, so the file stays plain ASL JSON for the local
orchestrator while the template loads it through DefinitionString.

CloudFormation caps a parameter value at 4,096 bytes (its quotas page, "Parameter value"; its
tuning strategy: several parameters joined with `Fn::Join`). The definition with the
reference-data fan-out is longer, so the templates take it in `<parts>` parameters (`1/2`,
`2/2`, cut evenly) and join them; `DefinitionString` itself takes up to 1 MiB. This needs no
new permission, unlike `DefinitionS3Location` (the execution role would read the object).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Tuple

from sceptre.exceptions import SceptreException
from sceptre.resolvers import Resolver

from envsync_sceptre.resolvers.arguments import require_text

# CloudFormation rejects a parameter value above 4096 bytes.
MAX_PARAMETER_BYTES = 4096
_PART = re.compile(r"^(?P<path>.+?)\s+(?P<part>\d+)/(?P<parts>\d+)$")


def minified_json(path: Path, limit: int = MAX_PARAMETER_BYTES, parts: int = 1) -> str:
    """The whole file, minified (ASCII: a byte per character), checked to fit `parts` parameters."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SceptreException(f"{path}: not a readable JSON file ({err})") from err
    text = json.dumps(document, separators=(",", ":"))
    if math.ceil(len(text.encode()) / parts) > limit:
        raise SceptreException(
            f"{path}: {len(text.encode())} bytes minified, above {parts} x the {limit}-byte CloudFormation "
            "parameter limit: add a StateMachineDefinition part to the templates and the env configs "
            "(joined with Fn::Join), or load it with DefinitionS3Location instead"
        )
    return text


def json_part(path: Path, part: int, parts: int, limit: int = MAX_PARAMETER_BYTES) -> str:
    """Part `part` (1-based) of `parts` even cuts of the minified file; joined in order, the file."""
    if not 1 <= part <= parts:
        raise SceptreException(f"{path}: part {part}/{parts} does not exist")
    text = minified_json(path, limit, parts)
    size = math.ceil(len(text) / parts)
    return text[(part - 1) * size:part * size]


def parse_argument(argument: str) -> Tuple[Path, int, int]:
    """`<path>` (the whole file) or `<path> <part>/<parts>`."""
    match = _PART.match(argument.strip())
    if match is None:
        return Path(argument.strip()), 1, 1
    return Path(match["path"]), int(match["part"]), int(match["parts"])


class JsonFile(Resolver):
    """Argument: the path of a JSON file (`{{ project_path }}/templates/...`), then `<part>/<parts>`
    when the templates join the definition from several parameters."""

    def setup(self) -> None:
        require_text(self, "!envsync_json_file", "the path of a JSON file")

    def resolve(self) -> str:
        return json_part(*parse_argument(str(self.argument)))
