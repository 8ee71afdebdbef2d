"""Security properties across every rendered template of every env.

- IAM scan: no `*` action anywhere in envsync's data-plane roles; no `*` resource in any
  cross-account role (trusted by another account); elsewhere a bare `*` resource only for
  actions AWS offers no resource-level permission for (ec2:DescribeNetworkInterfaces).
- Prod is never a source: no role in prod trusts another env's account, no SG or NACL in prod
  admits a connection from another VPC, no peering accepter in prod.
- The approver role (the one operator-facing role of the data plane) trusts exactly the
  configured approvers' principal and may only read and answer its own env's sync runs.
- checkov: zero failed checks; every skip carries a justification.
- No lint exceptions: cfn-lint's rules all stay on (its runtime deprecation warning included).
- No stack depends on a stack of another env (Sceptre #1262).
"""

from __future__ import annotations

import ipaddress

from envsync_tools.proof.cfn_eval import as_list, statements
from tests.chain import chain, upstream_of
from tests.conftest import PROJECT_ROOT

ENVS = chain()  # config/config.yaml envs:, upstream first
DATA_PLANE = ("artifacts", "aurora", "sync", "peering-upstream", "peering-downstream")
# Actions without resource-level permissions (AWS service authorization reference).
# Actions with no resource-level permissions (AWS service authorization reference).
NO_RESOURCE_LEVEL = {"ec2:DescribeNetworkInterfaces", "secretsmanager:GetRandomPassword"}
CIDRS = {"dev": "10.1.0.0/16", "staging": "10.2.0.0/16", "prod": "10.3.0.0/16"}


def data_plane(env_stacks):
    for env in ENVS:
        for stack in DATA_PLANE:
            name = f"{env}/{stack}"
            if name in env_stacks.rendered:
                yield env, name, env_stacks.evaluated(name)


def roles(evaluated):
    return evaluated.of_type("AWS::IAM::Role")


APPROVER = "ApproverRole"


def env_roles(evaluated):
    """Roles that run or link the envs (every data-plane role but the approver's)."""
    return {name: role for name, role in roles(evaluated).items() if name != APPROVER}


def trusted_accounts(role, own_account):
    accounts = set()
    for statement in statements(role["Properties"]["AssumeRolePolicyDocument"]):
        principal = statement.get("Principal", {})
        for arn in as_list(principal.get("AWS", [])) if isinstance(principal, dict) else []:
            accounts.add(str(arn).split(":")[4])
    return accounts - {own_account}


def policy_statements(role):
    for policy in role["Properties"].get("Policies", []):
        yield from statements(policy["PolicyDocument"])


def test_no_wildcard_action_and_explicit_resources_in_every_role(env_stacks):
    problems = []
    cross_account = 0
    for env, name, evaluated in data_plane(env_stacks):
        for role_name, role in env_roles(evaluated).items():
            foreign = trusted_accounts(role, env_stacks.account(env))
            cross_account += bool(foreign)
            for statement in policy_statements(role):
                actions = as_list(statement["Action"])
                resources = as_list(statement["Resource"])
                where = f"{name} {role_name} {statement.get('Sid', '')}"
                if any("*" in action for action in actions):
                    problems.append(f"{where}: wildcard action {actions}")
                if "*" in resources:
                    if foreign:
                        problems.append(f"{where}: '*' resource in a cross-account role")
                    elif set(actions) - NO_RESOURCE_LEVEL:
                        problems.append(f"{where}: '*' resource for {actions}")
                for resource in resources:
                    if isinstance(resource, str) and resource.endswith(":*") and foreign:
                        problems.append(f"{where}: account-wide resource {resource}")
            assert "ManagedPolicyArns" not in role["Properties"] or not foreign
    assert cross_account == 4  # dev + staging: source reader + peering accepter
    assert not problems, "\n".join(problems)


def test_the_approver_role_trusts_the_approvers_and_only_answers_its_own_runs(env_stacks):
    from envsync_sceptre.config.envconfig import read_shared_values

    approvers = read_shared_values(PROJECT_ROOT / "config")["approver_trusted_principal"]
    for env in ENVS:
        account = env_stacks.account(env)
        # the administrator's (bootstrap stack), never the sync stack CI launches
        role = env_stacks.evaluated(f"{env}/bootstrap").resources[APPROVER]
        assert APPROVER not in env_stacks.evaluated(f"{env}/sync").resources
        trust = list(statements(role["Properties"]["AssumeRolePolicyDocument"]))
        assert [as_list(t["Principal"]["AWS"]) for t in trust] == [[approvers]], env
        machine = f"arn:aws:states:us-east-1:{account}:stateMachine:envsync-{env}-sync"  # named so (test_sync)
        granted = {}
        for statement in policy_statements(role):
            for action in as_list(statement["Action"]):
                granted[action] = as_list(statement["Resource"])
        # no resource-level permissions (Service Authorization Reference): "*" is the only grant
        # that matches; what the role can answer is bounded by the history it may read (below)
        assert granted["states:SendTaskSuccess"] == granted["states:SendTaskFailure"] == ["*"]
        from envsync_tools.proof.resource_types import action_resource_types
        assert action_resource_types("states:SendTaskSuccess") == action_resource_types("states:SendTaskFailure") == ()
        assert granted["states:ListExecutions"] == granted["states:DescribeStateMachine"] == [machine]
        # `envsync status` says whom it trusts
        assert granted["iam:GetRole"] == [f"arn:aws:iam::{account}:role/envsync-{env}-approver"]
        assert granted["states:GetExecutionHistory"] == [
            f"arn:aws:states:us-east-1:{account}:execution:envsync-{env}-sync:*"]
        key_statement = next(s for s in policy_statements(role) if "kms:Decrypt" in as_list(s["Action"]))
        assert key_statement["Condition"]["StringEquals"]["kms:EncryptionContext:aws:states:stateMachineArn"]
        # `envsync plan|validate --env` of the chain's source read its bucket's scripts: there only,
        # the listing of migrations/, its objects, and the env key through S3 for this bucket
        source = not env_stacks.envs[env].upstream_env
        services = {"states", "kms", "iam"} | ({"s3"} if source else set())
        assert {a.split(":")[0] for a in granted} == services, env
        if source:
            bucket = f"arn:aws:s3:::envsync-{env}-migrations-{account}"
            reads = {s["Sid"]: s for s in policy_statements(role) if s.get("Sid", "").endswith("MigrationScripts")
                     or s.get("Sid") == "DecryptMigrationScriptsThroughS3"}
            assert reads["ListMigrationScripts"]["Resource"] == bucket
            assert reads["ListMigrationScripts"]["Condition"] == {"StringEquals": {"s3:prefix": "migrations/"}}
            assert reads["ReadMigrationScripts"]["Action"] == "s3:GetObject"
            assert str(reads["ReadMigrationScripts"]["Resource"]).endswith("/migrations/*")
            assert reads["DecryptMigrationScriptsThroughS3"]["Condition"]["StringEquals"] == {
                "kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": bucket}


def test_cross_account_roles_name_one_account_and_require_conditions(env_stacks):
    for env, name, evaluated in data_plane(env_stacks):
        for role_name, role in env_roles(evaluated).items():
            foreign = trusted_accounts(role, env_stacks.account(env))
            if not foreign:
                continue
            downstream = next(e for e in ENVS if env_stacks.envs[e].upstream_env == env)
            assert foreign == {env_stacks.account(downstream)}, (name, role_name)
            assert env != "prod"


def test_prod_is_never_a_source(env_stacks):
    prod_account = env_stacks.account("prod")
    prod_cidr = ipaddress.ip_network(CIDRS["prod"])
    for stack in ("aurora", "sync", "peering-upstream", "artifacts"):
        evaluated = env_stacks.evaluated(f"prod/{stack}")
        # No role in prod trusts another env's account.
        for role in env_roles(evaluated).values():
            assert not trusted_accounts(role, prod_account), stack
        # Nothing in prod admits traffic that starts in another VPC.
        for resource in evaluated.of_type("AWS::EC2::SecurityGroupIngress").values():
            source = resource["Properties"].get("CidrIp")
            assert source is None or ipaddress.ip_network(source).subnet_of(prod_cidr)
        for entry in evaluated.of_type("AWS::EC2::NetworkAclEntry").values():
            props = entry["Properties"]
            if props["Egress"] is False and props["RuleAction"] == "allow":
                assert props["PortRange"]["From"] >= 1024, "prod accepts only replies from peers"
    sync = env_stacks.evaluated("prod/sync")
    assert "SourceReaderRole" not in sync.resources
    assert "prod/peering-downstream" not in env_stacks.rendered
    aurora = env_stacks.evaluated("prod/aurora")
    assert "SyncReaderSecret" not in aurora.resources
    assert "ReaderConnectionParameter" not in aurora.resources
    # No other env holds a grant naming prod's account (reader roles, routes are return paths).
    for env in ("dev", "staging"):
        for stack in ("sync", "aurora"):
            evaluated = env_stacks.evaluated(f"{env}/{stack}")
            for role in roles(evaluated).values():
                for statement in policy_statements(role):
                    for resource in as_list(statement["Resource"]):
                        assert f":{prod_account}:" not in str(resource), (env, stack, statement)
    staging_sync = env_stacks.evaluated("staging/sync")
    assume = [s for s in policy_statements(staging_sync.resources["SyncRole"])
              if "sts:AssumeRole" in as_list(s["Action"])]
    assert all(prod_account not in str(s["Resource"]) for s in assume)


def test_no_stack_depends_on_another_envs_stack():
    """Sceptre #1262: cross-account values come by resolver with a role, never by dependency."""
    from sceptre.context import SceptreContext
    from sceptre.plan.plan import SceptrePlan

    from tests.conftest import PROJECT_ROOT

    context = SceptreContext(project_path=str(PROJECT_ROOT), command_path="")
    for stack in SceptrePlan(context).graph:
        env = stack.name.split("/")[0]
        for dependency in stack.dependencies:
            assert str(getattr(dependency, "name", dependency)).split("/")[0] == env, stack.name


def test_no_lint_exception_anywhere(env_stacks):
    """The runtime deprecation (W1030) is reported, not silenced: tests/templates/test_cfn_lint.py
    accepts it exactly where the runtime is deprecated."""
    for name, template in env_stacks.rendered.items():
        for resource_name, resource in template.get("Resources", {}).items():
            assert "cfn-lint" not in resource.get("Metadata", {}), (name, resource_name)
        assert "cfn-lint" not in template.get("Metadata", {}), f"{name}: template-wide lint exception"


def test_checkov_finds_nothing_and_every_skip_is_justified(checkov_report, env_stacks):
    results = checkov_report["results"]
    failed = [f"{c['file_path']} {c['resource']} {c['check_id']} {c['check_name']}"
              for c in results["failed_checks"] if "bootstrap" not in c["file_path"]]
    assert not failed, "\n".join(failed)
    for name, template in env_stacks.rendered.items():
        for resource_name, resource in template.get("Resources", {}).items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(str(skip.get("comment", ""))) > 30, (name, resource_name, skip)
    skipped = {c["check_id"] for c in results["skipped_checks"] if "bootstrap" not in c["file_path"]}
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["passed"] > 400
    assert skipped <= {"CKV_AWS_18", "CKV_AWS_326", "CKV_AWS_363", "CKV_AWS_116", "CKV_AWS_115",
                       "CKV_AWS_272", "CKV_AWS_284", "CKV_AWS_285"}


def test_checkov_finds_nothing_in_bootstrap(checkov_report):
    """Only the CloudFormation execution role and the permissions boundary (a ceiling, not a grant)
    are skipped (CKV_AWS_107-111, justified inline)."""
    failed = [c for c in checkov_report["results"]["failed_checks"] if "bootstrap" in c["file_path"]]
    assert not failed, [f"{c['file_path']} {c['check_id']}" for c in failed]
    skipped = {(c["resource"], c["check_id"]) for c in checkov_report["results"]["skipped_checks"]
               if "bootstrap" in c["file_path"]}
    assert {resource for resource, _ in skipped} <= {"AWS::IAM::Role.CfnExecutionRole",
                                                      "AWS::IAM::ManagedPolicy.PermissionsBoundary"}


def chain_accounts(env_stacks, env: str) -> list:
    """The env's account, then its upstream's (whose source-reader role its sync assumes)."""
    upstream = upstream_of(env)
    return [env_stacks.account(env)] + ([env_stacks.account(upstream)] if upstream else [])


def test_endpoints_admit_only_the_chain_accounts_and_our_buckets(env_stacks):
    for env in ENVS:
        accounts = chain_accounts(env_stacks, env)
        evaluated = env_stacks.evaluated(f"{env}/network")
        endpoints = evaluated.of_type("AWS::EC2::VPCEndpoint")
        assert len(endpoints) == 9, env
        for logical_id, endpoint in endpoints.items():
            policy = endpoint["Properties"]["PolicyDocument"]
            for statement in statements(policy):
                # a copy: the evaluated templates are shared by the whole session
                condition = dict(statement.get("Condition", {}).get("StringEquals", {}))
                if statement["Sid"] == "CloudFormationResponses":
                    assert statement["Action"] == "s3:PutObject"
                    assert statement["Resource"].endswith(":s3:::cloudformation-custom-resource-response-*/*")
                    continue
                assert condition.pop("aws:PrincipalAccount") == accounts, f"{env} {logical_id}"
                # ... and only on their resources (aws:ResourceAccount).
                if logical_id == "S3Endpoint":
                    assert condition == {"aws:ResourceAccount": accounts[0]}, env
                else:
                    assert not condition and statement["Condition"]["StringEqualsIfExists"] == {
                        "aws:ResourceAccount": accounts}, f"{env} {logical_id}"
                if logical_id == "S3Endpoint":
                    assert as_list(statement["Resource"]) == [f"arn:aws:s3:::envsync-{env}-*",
                                                              f"arn:aws:s3:::envsync-{env}-*/*"]
