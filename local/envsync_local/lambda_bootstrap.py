"""The runtime's side of an offline Lambda invocation: import the handler, call it, report.

Runs as `python -S -m envsync_lambda_bootstrap <module.function>` with only the function's
unpacked package and the runtime's SDK on sys.path (see envsync_local.lambda_package), so it
imports nothing but the standard library. Reads the event from stdin and writes
`{"result": ...}` or `{"errorType", "errorMessage"}` after RESULT_MARKER as the last stdout line.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import uuid
from typing import Any, Dict

RESULT_MARKER = "__envsync_lambda_result__"


class _Context:
    """The parts of the Lambda context object handlers use."""

    def __init__(self, timeout_s: float):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:function:{self.function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    handler_path = sys.argv[1]
    module_name, _, function_name = handler_path.rpartition(".")
    event = json.loads(sys.stdin.read() or "null")
    context = _Context(float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3")))
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        outcome: Dict[str, Any] = {"result": handler(event, context)}
    except Exception as err:  # reported to the caller as Lambda reports it
        outcome = {"errorType": type(err).__name__, "errorMessage": str(err)}
    sys.stdout.flush()
    print(RESULT_MARKER + json.dumps(outcome, default=str))


if __name__ == "__main__":
    main()
