"""`!envsync_json_file <path>`: a JSON file (the Step Functions definition) checked and minified
into one parameter string, so the file stays plain ASL JSON for the local orchestrator while the
template loads it through DefinitionString.
"""

from __future__ import annotations

import json
from pathlib import Path

from sceptre.exceptions import SceptreException
from sceptre.resolvers import Resolver

from envsync_sceptre.resolvers.arguments import require_text

# CloudFormation rejects a parameter value above 4096 bytes.
MAX_PARAMETER_BYTES = 4096


def minified_json(path: Path, limit: int = MAX_PARAMETER_BYTES) -> str:
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SceptreException(f"{path}: not a readable JSON file ({err})") from err
    text = json.dumps(document, separators=(",", ":"))
    if len(text.encode()) > limit:
        raise SceptreException(
            f"{path}: {len(text.encode())} bytes minified, above the {limit}-byte CloudFormation "
            "parameter limit: load it with DefinitionS3Location instead"
        )
    return text


class JsonFile(Resolver):
    """Argument: the path of a JSON file (`{{ project_path }}/templates/...`)."""

    def setup(self) -> None:
        require_text(self, "!envsync_json_file", "the path of a JSON file")

    def resolve(self) -> str:
        return minified_json(Path(str(self.argument)))
