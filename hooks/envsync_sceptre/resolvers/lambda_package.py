"""`!envsync_lambda_package {bucket: <name>, source: <lambda_code dir>, runtime: <lambda_runtime>}`:
builds the Lambda zip for the functions' runtime (deterministic, see packaging.py), uploads it
to the env's artifacts bucket if absent, and resolves to its S3 key. A resolver rather than a
hook because its result is a value the stack needs (Code.S3Key); it runs on
launch/diff/validate, never on generate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from sceptre.exceptions import SceptreException
from sceptre.resolvers import Resolver

from envsync_sceptre.packaging.package import PackagingError, ca_bundle_dir, publish
from envsync_sceptre.resolvers.arguments import require_mapping


class LambdaPackage(Resolver):
    """Argument: {bucket: the env's artifacts bucket, source: the lambda_code directory,
    runtime: the functions' Lambda runtime, the stack's LambdaRuntime}."""

    def setup(self) -> None:
        require_mapping(self, "!envsync_lambda_package", ("bucket", "source", "runtime"))

    def required_calls(self) -> List[Dict[str, Any]]:
        """What this resolver calls as the stack's sceptre_role (checked by the permission proof).

        `encrypted_with_bucket_key`: the bucket's default encryption (SSE-KMS) asks KMS for a
        data key through S3 on the caller's behalf.
        """
        bucket = str(self.argument["bucket"])
        return [{"action": "s3:GetObject", "resource": f"arn:aws:s3:::{bucket}/lambda/*"},
                {"action": "s3:PutObject", "resource": f"arn:aws:s3:::{bucket}/lambda/*",
                 "encrypted_with_bucket_key": f"arn:aws:s3:::{bucket}"}]

    def resolve(self) -> str:
        bucket, source = str(self.argument["bucket"]), Path(str(self.argument["source"]))

        def call(command: str, kwargs: Dict[str, object]) -> Dict[str, object]:
            return self.stack.connection_manager.call(service="s3", command=command, kwargs=kwargs)

        try:
            result = publish(call, bucket, source, ca_bundle_dir=ca_bundle_dir(),
                             runtime=str(self.argument["runtime"]))
        except PackagingError as err:
            raise SceptreException(f"{self.stack.name}: {err}") from err
        return result.key
