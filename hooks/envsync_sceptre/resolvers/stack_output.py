"""`!envsync_stack_output {stack, output, role[, default]}`: an output of a stack in another
account, read with that account's deployer role. Sceptre's `!stack_output_external` takes the
role as `PROFILE::REGION::ROLE`, which a role ARN (`arn:aws:iam::...`) cannot pass, and
`!stack_output` would add a cross-account dependency (Sceptre issue #1262). With `default`, a
stack that does not exist yet resolves to it (the peering return routes: first pass).
"""

from __future__ import annotations

from botocore.exceptions import ClientError
from sceptre.exceptions import SceptreException
from sceptre.resolvers import Resolver

from envsync_sceptre.resolvers.arguments import require_mapping


class CrossAccountStackOutput(Resolver):
    """Argument: {stack: full stack name, output: key, role: role ARN, default: optional}."""

    def setup(self) -> None:
        require_mapping(self, "!envsync_stack_output", ("stack", "output", "role"), optional=("default",))

    def resolve(self) -> str:
        argument = self.argument
        stack_name, output, role = str(argument["stack"]), str(argument["output"]), str(argument["role"])
        has_default = "default" in argument
        try:
            response = self.stack.connection_manager.call(
                service="cloudformation", command="describe_stacks",
                kwargs={"StackName": stack_name}, sceptre_role=role,
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
