"""Resolvers that hand built artifacts to a stack as parameter values.

- `!envsync_lambda_package {bucket: <name>, source: <lambda_code dir>}`: builds the Lambda zip
  (deterministic, see packaging.py), uploads it to the env's artifacts bucket if absent, and
  resolves to its S3 key. A resolver rather than a hook because its result is a value the
  stack needs (Code.S3Key); it runs on launch/diff/validate, never on generate.
- `!envsync_json_file <path>`: a JSON file (the Step Functions definition) checked and
  minified into one parameter string, so the file stays plain ASL JSON for the local
  orchestrator while the template loads it through DefinitionString.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping

from sceptre.exceptions import SceptreException
from sceptre.resolvers import Resolver

from envsync_sceptre.packaging import PackagingError, publish

# CloudFormation rejects a parameter value above 4096 bytes.
MAX_PARAMETER_BYTES = 4096


class LambdaPackage(Resolver):
    """Argument: {bucket: the env's artifacts bucket, source: the lambda_code directory}."""

    def resolve(self) -> str:
        argument: Mapping[str, Any] = self.argument if isinstance(self.argument, dict) else {}
        bucket, source = argument.get("bucket"), argument.get("source")
        if not bucket or not source:
            raise SceptreException(
                f"{self.stack.name}: !envsync_lambda_package needs {{bucket: ..., source: ...}}, "
                f"got {self.argument!r}"
            )

        def call(command: str, kwargs: Dict[str, object]) -> Dict[str, object]:
            return self.stack.connection_manager.call(service="s3", command=command, kwargs=kwargs)

        try:
            result = publish(call, str(bucket), Path(str(source)))
        except PackagingError as err:
            raise SceptreException(f"{self.stack.name}: {err}") from err
        return result.key


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

    def resolve(self) -> str:
        if not self.argument:
            raise SceptreException(f"{self.stack.name}: !envsync_json_file needs a path")
        return minified_json(Path(str(self.argument)))
