"""Run one Lambda handler invocation in this process (the child the custom resource model starts).

Usage: python -m envsync_local.cfn_models.lambda_runner MODULE.FUNCTION < event.json
The environment (function variables, the function role's credentials, region, endpoint) and
sys.path (the function's deployment package) are prepared by the parent.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import uuid


class Context:
    """The attributes of the Lambda context object handlers use."""

    def __init__(self, timeout_seconds: float):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.invoked_function_arn = os.environ.get("ENVSYNC_FUNCTION_ARN", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    module_name, _, function_name = sys.argv[1].rpartition(".")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    event = json.load(sys.stdin)
    handler = getattr(importlib.import_module(module_name), function_name)
    handler(event, Context(float(os.environ.get("ENVSYNC_FUNCTION_TIMEOUT", "3"))))


if __name__ == "__main__":
    main()
