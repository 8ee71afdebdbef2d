"""Resolvers that hand built artifacts to a stack as parameter values.

- `!envsync_lambda_package {bucket: <name>, source: <lambda_code dir>}`: builds the Lambda zip
  (deterministic, see packaging.py), uploads it to the env's artifacts bucket if absent, and
  resolves to its S3 key. A resolver rather than a hook because its result is a value the
  stack needs (Code.S3Key); it runs on launch/diff/validate, never on generate.
- `!envsync_stack_output {stack, output, role[, default]}`: an output of a stack in another
  account, read with that account's deployer role. Sceptre's `!stack_output_external` takes
  the role as `PROFILE::REGION::ROLE`, which a role ARN (`arn:aws:iam::...`) cannot pass, and
  `!stack_output` would add a cross-account dependency (Sceptre issue #1262). With `default`,
  a stack that does not exist yet resolves to it (the peering return routes: first pass).
- `!envsync_json_file <path>`: a JSON file (the Step Functions definition) checked and
  minified into one parameter string, so the file stays plain ASL JSON for the local
  orchestrator while the template loads it through DefinitionString.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping

from botocore.exceptions import ClientError
from sceptre.exceptions import SceptreException
from sceptre.resolvers import Resolver

from envsync_sceptre.packaging import PackagingError, ca_bundle_dir, publish

# CloudFormation rejects a parameter value above 4096 bytes.
MAX_PARAMETER_BYTES = 4096


class LambdaPackage(Resolver):
    """Argument: {bucket: the env's artifacts bucket, source: the lambda_code directory}."""

    def required_calls(self) -> List[Dict[str, Any]]:
        """What this resolver calls as the stack's sceptre_role (checked by the permission proof).

        `encrypted_with_bucket_key`: the bucket's default encryption (SSE-KMS) asks KMS for a
        data key through S3 on the caller's behalf.
        """
        bucket = str(self.argument.get("bucket")) if isinstance(self.argument, dict) else ""
        return [{"action": "s3:GetObject", "resource": f"arn:aws:s3:::{bucket}/lambda/*"},
                {"action": "s3:PutObject", "resource": f"arn:aws:s3:::{bucket}/lambda/*",
                 "encrypted_with_bucket_key": f"arn:aws:s3:::{bucket}"}]

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
            result = publish(call, str(bucket), Path(str(source)), ca_bundle_dir=ca_bundle_dir())
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


class CrossAccountStackOutput(Resolver):
    """Argument: {stack: full stack name, output: key, role: role ARN, default: optional}."""

    def resolve(self) -> str:
        argument: Mapping[str, Any] = self.argument if isinstance(self.argument, dict) else {}
        stack_name, output, role = argument.get("stack"), argument.get("output"), argument.get("role")
        if not stack_name or not output or not role:
            raise SceptreException(
                f"{self.stack.name}: !envsync_stack_output needs {{stack, output, role}}, "
                f"got {self.argument!r}"
            )
        has_default = "default" in argument
        try:
            response = self.stack.connection_manager.call(
                service="cloudformation", command="describe_stacks",
                kwargs={"StackName": str(stack_name)}, sceptre_role=str(role),
            )
        except ClientError as err:
            if has_default and "does not exist" in str(err):
                return str(argument["default"] or "")
            raise SceptreException(
                f"{self.stack.name}: cannot read stack {stack_name} as {role}: {err}"
            ) from err
        stacks = response.get("Stacks", [])
        outputs = {item["OutputKey"]: item["OutputValue"] for item in (stacks[0].get("Outputs", []) if stacks else [])}
        if output in outputs:
            return str(outputs[output])
        if has_default:
            return str(argument["default"] or "")
        raise SceptreException(
            f"{self.stack.name}: stack {stack_name} has no output {output} "
            f"(outputs: {', '.join(sorted(outputs)) or 'none'}); launch it first"
        )
