"""`!aws_prefix_list s3`: the id of the region's AWS-managed prefix list for a service.

Security groups can then allow HTTPS to the S3 gateway endpoint only, not to 0.0.0.0/0.
"""

from __future__ import annotations

from typing import Any, Dict, List

from sceptre.exceptions import SceptreException
from sceptre.resolvers import Resolver

from envsync_sceptre.resolvers.arguments import require_text


class AwsPrefixList(Resolver):
    """Argument: the service name (`s3`, `dynamodb`)."""

    def setup(self) -> None:
        require_text(self, "!aws_prefix_list", "a service name (s3, dynamodb)")

    def required_calls(self) -> List[Dict[str, Any]]:
        """What this resolver calls as the stack's sceptre_role (checked by the permission proof)."""
        return [{"action": "ec2:DescribePrefixLists", "resource": "*"}]

    def resolve(self) -> str:
        service = str(self.argument).strip()
        name = f"com.amazonaws.{self.stack.region}.{service}"
        response = self.stack.connection_manager.call(
            service="ec2",
            command="describe_prefix_lists",
            kwargs={"Filters": [{"Name": "prefix-list-name", "Values": [name]}]},
        )
        lists = response.get("PrefixLists", [])
        if not lists:
            raise SceptreException(f"{self.stack.name}: no AWS prefix list named {name}")
        return str(lists[0]["PrefixListId"])
