"""What moto's Lambda lacks for local mode: GetFunction's Code.Location that downloads the code.

In AWS, `Code.Location` is a pre-signed URL to the package Lambda copied from the artifacts
bucket (Code.S3Bucket/S3Key/S3ObjectVersion) when the function was created or updated. moto
copies the same bytes at the same moments but answers with a URL that leads nowhere; here the
URL is a route of this server that returns those bytes (runs in the moto server).
"""

from __future__ import annotations

from typing import Any, Dict, Tuple
from urllib.parse import parse_qs, urlencode, urlparse

ROUTE = "/moto-api/envsync/lambda-code"


def _serve(request: Any, full_url: str, headers: Any) -> Tuple[int, Dict[str, str], bytes]:
    from moto.awslambda.utils import get_backend

    query = {key: values[0] for key, values in parse_qs(urlparse(full_url).query).items()}
    try:
        function = get_backend(query["account"], query["region"]).get_function(query["function"])
    except Exception:
        return 404, {"Content-Type": "text/plain"}, b"no such function"
    if not getattr(function, "code_bytes", b""):
        return 404, {"Content-Type": "text/plain"}, b"the function has no package"
    return 200, {"Content-Type": "application/zip"}, function.code_bytes


def install(port: int) -> None:
    """Add the route and point every function's Code.Location at it."""
    from moto.awslambda.models import LambdaFunction
    from moto.moto_api._internal import urls

    urls.url_paths["{0}" + ROUTE + "$"] = _serve
    original = LambdaFunction.get_code

    def get_code(self: LambdaFunction) -> Dict[str, Any]:
        response = original(self)
        if "Code" in response and getattr(self, "code_bytes", b""):
            query = urlencode({"account": self.account_id, "region": self.region,
                               "function": self.function_name})
            response["Code"]["Location"] = f"http://127.0.0.1:{port}{ROUTE}?{query}"
        return response

    LambdaFunction.get_code = get_code
