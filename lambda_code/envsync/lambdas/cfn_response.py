"""The answer a CloudFormation custom resource's function owes CloudFormation (shared by the
custom resources' handlers): the response body, PUT to the request's pre-signed ResponseURL."""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Dict, Mapping, Optional

MAX_REASON = 3500  # keep the response body well under CloudFormation's 4 KB limit


def response_body(event: Mapping[str, Any], status: str, reason: str,
                  physical_id: Optional[str], data: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {
        "Status": status,
        "Reason": reason[:MAX_REASON],
        # A failed Create has no resource: any stable id will do (CloudFormation sends Delete).
        "PhysicalResourceId": physical_id or event.get("PhysicalResourceId")
        or f"{event.get('LogicalResourceId', 'resource')}-failed",
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "NoEcho": False,
        "Data": data or {},
    }


def send_response(url: str, body: Dict[str, Any], timeout: float = 30.0) -> None:
    """PUT the response to CloudFormation's pre-signed URL (content type empty, as S3 signs it)."""
    payload = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=payload, method="PUT",  # noqa: S310 - CFN's URL
                                     headers={"Content-Type": "", "Content-Length": str(len(payload))})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        response.read()
