"""The project as the proof sees it: every stack of every env rendered with Sceptre's own
renderer, with the account ids from `config/`, and each template evaluated for its env.

`render_project` is `sceptre generate` of every stack; `EnvStacks` takes each stack's parameters
from its Sceptre config as that env sets them. Resolvers that need a deployed stack are replaced
by a well-formed stand-in value (a KMS key ARN for `KeyArn`, subnet ids for `PrivateSubnetIds`...),
except outputs of the stacks evaluated here, which are evaluated too (sync's `HasReader` is
aurora's output). Nothing here calls AWS: it runs without credentials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from envsync_sceptre.config.envconfig import load_envs
from envsync_sceptre.resolvers.json_file import json_part, parse_argument
from envsync_tools.proof.cfn_eval import Evaluated


def render_project(project: Path) -> Dict[str, str]:
    """`sceptre generate` of every stack of every env, keyed 'env/stack' (e.g. 'prod/network')."""
    from sceptre.context import SceptreContext
    from sceptre.plan.plan import SceptrePlan

    context = SceptreContext(project_path=str(project), command_path="", ignore_dependencies=True)
    return {stack.name: body for stack, body in SceptrePlan(context).generate().items()}


class TemplateError(ValueError):
    """A rendered template that does not parse."""


def parse_templates(bodies: Dict[str, str]) -> Dict[str, dict]:
    """The rendered templates parsed (intrinsics such as !Sub kept as Fn:: dicts)."""
    from cfnlint.decode import decode_str

    parsed = {}
    for name, body in bodies.items():
        template, errors = decode_str(body)
        if errors:
            raise TemplateError(f"{name}: {errors}")
        parsed[name] = template
    return parsed


ENVS = ("dev", "staging", "prod")
FAKE_CODE_KEY = "lambda/envsync-" + "0" * 64 + ".zip"


# A P-256 public key (DER SubjectPublicKeyInfo, base64) standing in for !envsync_origin_key.
FAKE_ORIGIN_PUBLIC_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQ4Ft0wK3A3m2E3r0fJqK5kQ6b6mXx1+u6c7a8YgB2pPz"
                          "Jm3y3yQ5e0d4s1a2b3c4d5e6f7g8h9i0j1k2l3m4n5o6")


def fake_output(output: str, env: str, account_id: str) -> str:
    """A well-formed stand-in for an output of a stack that is not evaluated here."""
    index = ENVS.index(env) + 1 if env in ENVS else 9
    secrets = f"arn:aws:secretsmanager:us-east-1:{account_id}:secret:"
    fakes = {
        "KeyArn": f"arn:aws:kms:us-east-1:{account_id}:key/0000000{index}-0000-4000-8000-00000000000{index}",
        "SigningKeyArn": f"arn:aws:kms:us-east-1:{account_id}:key/5000000{index}-0000-4000-8000-00000000000{index}",
        "PrivateSubnetIds": f"subnet-0a{index},subnet-0b{index}",
        "VpcId": f"vpc-0{index}",
        "DbSecurityGroupId": f"sg-0db{index}",
        "LambdaSecurityGroupId": f"sg-0aa{index}",
        "PrivateNetworkAclId": f"acl-0{index}",
        "PrivateRouteTable1Id": f"rtb-01{index}",
        "PrivateRouteTable2Id": f"rtb-02{index}",
        "BucketName": f"envsync-{env}-artifacts-{account_id}",
        "PeeringConnectionId": f"pcx-0{index}",
        "AccepterRoleArn": f"arn:aws:iam::{account_id}:role/envsync-{env}-peering-accepter",
        "DeployerRoleArn": f"arn:aws:iam::{account_id}:role/envsync-deployer",
        "ClusterIdentifier": f"envsync-{env}-aurora-cluster-abc123",
        "MasterSecretArn": f"{secrets}rds!cluster-1-AbCdEf",
        "WriterSecretArn": f"{secrets}envsync/{env}/db/envsync_writer-AbCdEf",
        "ReaderSecretArn": f"{secrets}envsync/{env}/db/envsync_reader-AbCdEf",
    }
    if output not in fakes:
        raise KeyError(f"no stand-in for output {output} of {env}")
    return fakes[output]


class EnvStacks:
    """Every stack of every env: raw Sceptre parameters and the evaluated templates."""

    def __init__(self, rendered: Dict[str, dict], project: Path):
        from sceptre.context import SceptreContext
        from sceptre.plan.plan import SceptrePlan

        self.envs = load_envs(project / "config")
        context = SceptreContext(project_path=str(project), command_path="",
                                 ignore_dependencies=True)
        self.stacks = {stack.name: stack for stack in SceptrePlan(context).graph}
        self.rendered = rendered
        self._evaluated: Dict[str, Evaluated] = {}

    def account(self, env: str) -> str:
        return self.envs[env].account_id

    def raw_parameters(self, name: str) -> Dict[str, Any]:
        return dict(vars(self.stacks[name]).get("_parameters") or {})

    def user_data(self, name: str) -> Dict[str, Any]:
        return dict(vars(self.stacks[name]).get("_sceptre_user_data") or {})

    def parameter_values(self, name: str) -> Dict[str, Any]:
        from sceptre.resolvers import Resolver

        env = name.split("/")[0]
        values: Dict[str, Any] = {}
        for key, value in self.raw_parameters(name).items():
            values[key] = self._resolve(value, env) if isinstance(value, Resolver) else value
        return values

    def _resolve(self, resolver: Any, env: str) -> Any:
        kind = type(resolver).__name__
        argument = resolver.argument
        if kind == "StackOutput":
            stack, output = str(argument).split("::")
            stack = stack.replace(".yaml", "")
            if stack in self.rendered and not stack.endswith(("/network", "/kms", "/artifacts")):
                outputs = self.evaluated(stack).outputs
                if output not in outputs:
                    raise KeyError(f"{stack} has no output {output} in this env")
                value = outputs[output]
                if isinstance(value, str):
                    return value
                # A deploy-time value (Ref/GetAtt of a resource): a well-formed stand-in.
            return fake_output(output, stack.split("/")[0], self.account(stack.split("/")[0]))
        if kind == "LambdaPackage":
            return FAKE_CODE_KEY
        if kind == "JsonFile":
            return json_part(*parse_argument(str(argument)))
        if kind == "StackOutputExternal":  # `<full stack name>::<output>`, read in the same account
            stack, output = str(argument).split()[0].split("::")
            other_env = stack.split("-")[1]
            return fake_output(output, other_env, self.account(other_env))
        if kind == "CrossAccountStackOutput":
            other_env = str(argument["stack"]).split("-")[1]
            return fake_output(str(argument["output"]), other_env, self.account(other_env))
        if kind in ("LagAlarmPeriod", "RefdataTables"):
            return resolver.resolve()  # derived from config/, no AWS call
        if kind == "AwsPrefixList":
            return "pl-63a5400a"
        if kind == "OriginKey":
            (call,) = resolver.required_calls()
            if argument["attribute"] == "KeyArn":
                return fake_output("SigningKeyArn", call["env"], self.account(call["env"]))
            return FAKE_ORIGIN_PUBLIC_KEY
        raise KeyError(f"no stand-in for resolver {kind} ({argument!r})")

    def evaluated(self, name: str) -> Evaluated:
        if name not in self._evaluated:
            env = name.split("/")[0]
            self._evaluated[name] = Evaluated(
                self.rendered[name], self.parameter_values(name), self.account(env)
            )
        return self._evaluated[name]

    def names(self, stack: str) -> Dict[str, str]:
        """'dev' -> 'dev/<stack>' for every env that has the stack."""
        return {env: f"{env}/{stack}" for env in self.envs if f"{env}/{stack}" in self.rendered}


def load_project(project: Path) -> EnvStacks:
    """Every stack of every env of the project at `project`, rendered and ready to evaluate."""
    return EnvStacks(parse_templates(render_project(project)), project)
