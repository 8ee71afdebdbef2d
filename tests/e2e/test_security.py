"""Security (issue 7): least privilege across the promotion chain, prod never readable, secrets
never in logs or outputs.

What moto 5.2.5 can enforce (server mode, `/moto-api/reset-auth`, server-wide):
- S3: the request's bucket/object ARN is evaluated against the caller's identity policies;
- STS AssumeRole: the role ARN is evaluated against the caller's identity policies;
- not SSM, Secrets Manager, KMS, Lambda, SNS, ...: moto evaluates them against resource "*",
  so an ARN-scoped Allow never matches (the allowed parameter is denied too);
- not a role's trust policy on a cross-account AssumeRole (moto looks the role up in the
  caller's account, does not find it, and skips the trust check; ExternalId is not checked);
- moto lets anyone assume a role that does not exist.
Those parts are proven on the deployed policies read back from moto IAM with `iam_eval`.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import pytest
from botocore.exceptions import ClientError

from envsync_local.cli import credentials_session
from envsync_local.cycle import inbox_messages
from envsync_tools.proof.policy import ALLOW, DENY, Request, UnsupportedPolicy, evaluate

from .helpers import assume, iam_enforced

pytestmark = pytest.mark.launched

# ---------------------------------------------------------------- the evaluator itself

IDENTITY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"},
    {"Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": "arn:aws:ssm:us-east-1:111111111111:parameter/a"},
    {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/secret/*"},
    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-east-1:111111111111:key/k",
     "Condition": {"StringEquals": {"kms:ViaService": ["ssm.us-east-1.amazonaws.com"]}}},
]}
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "sts:AssumeRole",
    "Condition": {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::222222222222:role/sync"},
                  "StringEquals": {"sts:ExternalId": "xid"}}}]}
SYNC = "arn:aws:iam::222222222222:role/sync"


@pytest.mark.parametrize("request_, expected", [
    (Request("s3:GetObject", "arn:aws:s3:::bucket/migrations/V1.sql"), ALLOW),
    (Request("S3:GETOBJECT", "arn:aws:s3:::bucket/x"), ALLOW),  # actions are case-insensitive
    (Request("s3:PutObject", "arn:aws:s3:::bucket/x"), DENY),  # implicit deny
    (Request("s3:GetObject", "arn:aws:s3:::bucket/secret/x"), DENY),  # explicit deny wins
    (Request("s3:GetObject", "arn:aws:s3:::bucket2/x"), DENY),
    (Request("ssm:GetParameter", "arn:aws:ssm:us-east-1:111111111111:parameter/a"), ALLOW),
    (Request("ssm:GetParameter", "arn:aws:ssm:us-east-1:111111111111:parameter/ab"), DENY),
    (Request("kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:key/k",
             context={"kms:ViaService": "ssm.us-east-1.amazonaws.com"}), ALLOW),
    (Request("kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:key/k"), DENY),  # key missing
    (Request("kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:key/k",
             context={"kms:ViaService": "s3.us-east-1.amazonaws.com"}), DENY),
])
def test_evaluator_identity_policies(request_, expected):
    assert evaluate([IDENTITY], request_) == expected


@pytest.mark.parametrize("principal, context, expected", [
    (SYNC, {"aws:PrincipalArn": SYNC, "sts:ExternalId": "xid"}, ALLOW),
    (SYNC, {"aws:PrincipalArn": SYNC, "sts:ExternalId": "other"}, DENY),
    (SYNC, {"aws:PrincipalArn": SYNC}, DENY),
    ("arn:aws:iam::222222222222:role/other", {"aws:PrincipalArn": "arn:aws:iam::222222222222:role/other",
                                               "sts:ExternalId": "xid"}, DENY),
    ("arn:aws:iam::333333333333:role/sync", {"aws:PrincipalArn": "arn:aws:iam::333333333333:role/sync",
                                              "sts:ExternalId": "xid"}, DENY),
])
def test_evaluator_trust_policies(principal, context, expected):
    assert evaluate([TRUST], Request("sts:AssumeRole", "*", principal, context)) == expected


def test_evaluator_refuses_what_it_does_not_model():
    policy = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                             "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}
    with pytest.raises(UnsupportedPolicy):
        evaluate([policy], Request("s3:GetObject", "arn:aws:s3:::b/k"))


# ---------------------------------------------------------------- the deployed policies

def role_policies(system, env: str, role_name: str) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """(trust policy, identity policies) of a deployed role, read back from moto IAM."""
    iam = system[env].client("iam")
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    identity = []
    for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        assert isinstance(document, dict), f"{role_name}/{name} is not JSON: {document!r:.80}"
        identity.append(document)
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        identity.append(iam.get_policy_version(PolicyArn=attached["PolicyArn"],
                                               VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"])
    return trust, identity


def _listed(value: Any) -> List[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def all_roles(system, env: str) -> List[str]:
    iam = system[env].client("iam")
    return [role["RoleName"] for page in iam.get_paginator("list_roles").paginate() for role in page["Roles"]]


def resources(system, env: str) -> Dict[str, str]:
    handle = system[env]
    account, region = system.launched.envs[env].account_id, "us-east-1"
    key_arn = system.launched.outputs(env, "kms")["KeyArn"]
    bucket = handle.outputs["MigrationBucketName"]
    return {
        "reader_parameter": f"arn:aws:ssm:{region}:{account}:parameter/envsync/{env}/db/envsync_reader/connection",
        "writer_parameter": f"arn:aws:ssm:{region}:{account}:parameter/envsync/{env}/db/envsync_writer/connection",
        "reader_secret": handle.outputs.get("ReaderSecretArn", ""),
        "writer_secret": handle.outputs["WriterSecretArn"],
        "master_secret": handle.outputs["MasterSecretArn"],
        "bucket": f"arn:aws:s3:::{bucket}",
        "object": f"arn:aws:s3:::{bucket}/migrations/V1__reference_tables.sql",
        "key": key_arn,
    }


LINKS = [("dev", "staging"), ("staging", "prod")]  # (upstream, downstream)


@pytest.mark.parametrize("upstream, downstream", LINKS)
def test_source_reader_role_reads_exactly_the_upstream_sources(system, upstream, downstream):
    external_id = system[downstream].client("lambda").get_function_configuration(
        FunctionName=f"envsync-{downstream}-refdata")["Environment"]["Variables"]["ENVSYNC_UPSTREAM_EXTERNAL_ID"]
    trust, identity = role_policies(system, upstream, f"envsync-{upstream}-source-reader")
    sync_role = system[downstream].outputs["SyncRoleArn"]
    down_account = system.launched.envs[downstream].account_id

    def may_assume(principal: str, external: str = external_id) -> str:
        return evaluate([trust], Request("sts:AssumeRole", "*", principal,
                                         {"aws:PrincipalArn": principal, "sts:ExternalId": external}))

    assert may_assume(sync_role) == ALLOW
    assert may_assume(sync_role, "guessed-external-id") == DENY
    assert may_assume(f"arn:aws:iam::{down_account}:role/envsync-{downstream}-sync-users") == DENY
    for other_env in system.launched.envs:
        if other_env != downstream:
            assert may_assume(system[other_env].outputs["SyncRoleArn"]) == DENY, other_env

    up = resources(system, upstream)
    allowed = [
        Request("ssm:GetParameter", up["reader_parameter"]),
        Request("secretsmanager:GetSecretValue", up["reader_secret"]),
        Request("kms:Decrypt", up["key"], context={"kms:ViaService": "ssm.us-east-1.amazonaws.com"}),
    ]
    denied = [
        Request("ssm:GetParameter", up["writer_parameter"]),
        Request("ssm:PutParameter", up["reader_parameter"]),
        Request("ssm:GetParameter", up["reader_parameter"].replace("/connection", "/other")),
        Request("secretsmanager:GetSecretValue", up["writer_secret"]),
        Request("secretsmanager:GetSecretValue", up["master_secret"]),
        Request("secretsmanager:PutSecretValue", up["reader_secret"]),
        # promotion reads the upstream's history table, never its bucket
        Request("s3:GetObject", up["object"]),
        Request("s3:ListBucket", up["bucket"]),
        Request("kms:Decrypt", up["key"], context={"kms:ViaService": "s3.us-east-1.amazonaws.com"}),
        Request("s3:PutObject", up["object"]),
        Request("s3:DeleteObject", up["object"]),
        Request("s3:PutBucketPolicy", up["bucket"]),
        Request("s3:GetObject", f"arn:aws:s3:::envsync-{upstream}-artifacts-"
                                f"{system.launched.envs[upstream].account_id}/lambda.zip"),
        Request("kms:Decrypt", up["key"]),  # only through SSM / Secrets Manager / S3
        Request("kms:Encrypt", up["key"], context={"kms:ViaService": "ssm.us-east-1.amazonaws.com"}),
        Request("sts:AssumeRole",
                f"arn:aws:iam::{system.launched.envs[upstream].account_id}:role/envsync-{upstream}-sync"),
        Request("iam:PassRole", "*"),
    ]
    for request in allowed:
        assert evaluate(identity, request) == ALLOW, request
    for request in denied:
        assert evaluate(identity, request) == DENY, request


def test_sync_roles_may_assume_only_their_upstream_reader(system):
    readers = {env: f"arn:aws:iam::{system.launched.envs[env].account_id}:role/envsync-{env}-source-reader"
               for env in system.launched.envs}
    for env in system.launched.envs:
        _, identity = role_policies(system, env, f"envsync-{env}-sync")
        upstream = {down: up for up, down in LINKS}.get(env)
        for reader_env, reader in readers.items():
            expected = ALLOW if reader_env == upstream else DENY
            assert evaluate(identity, Request("sts:AssumeRole", reader)) == expected, (env, reader_env)


def test_nothing_outside_prod_can_read_prod(system):
    """Cross-account access needs the target's consent: a role of the target account that
    trusts the caller, or a resource policy of the target naming it (an identity Allow on "*"
    never reaches into another account). Prod gives neither to anything in dev or staging."""
    prod_account = system.launched.envs["prod"].account_id
    with pytest.raises(ClientError, match="NoSuchEntity"):
        system["prod"].client("iam").get_role(RoleName="envsync-prod-source-reader")
    assert "SourceReaderRoleArn" not in system["prod"].outputs and "ReaderSecretArn" not in system["prod"].outputs
    outsiders = [f"arn:aws:iam::{system.launched.envs[env].account_id}:role/{role}"
                 for env in ("dev", "staging") for role in all_roles(system, env)]
    assert len(outsiders) >= 10

    # No identity policy outside prod even names a prod resource. (staging's peering accepter
    # names prod's VPCs in a Condition: who may request peering, not a resource it reaches.)
    for outsider in outsiders:
        env = "dev" if outsider.split(":")[4] == system.launched.envs["dev"].account_id else "staging"
        _, identity = role_policies(system, env, outsider.rsplit("/", 1)[1])
        named = [resource for document in identity for statement in document["Statement"]
                 for key in ("Resource", "NotResource") for resource in _listed(statement.get(key))]
        assert not [r for r in named if f":{prod_account}:" in r], (outsider, named)

    # No prod role trusts anything outside prod.
    prod_roles = all_roles(system, "prod")
    assert {"envsync-prod-sync", "envsync-prod-sync-users", "envsync-prod-rotate-sync-users",
            "envsync-deployer"} <= set(prod_roles)
    for role in prod_roles:
        trust, _ = role_policies(system, "prod", role)
        for outsider in outsiders:
            context = {"aws:PrincipalArn": outsider, "aws:SourceAccount": outsider.split(":")[4],
                       "sts:ExternalId": "envsync-staging-to-prod"}
            assert evaluate([trust], Request("sts:AssumeRole", "*", outsider, context)) == DENY, (role, outsider)

    # Prod's resource policies (bucket, key, secrets) grant nothing to an outsider.
    prod = resources(system, "prod")
    handle = system["prod"]
    bucket_policy = handle.client("s3").get_bucket_policy(Bucket=handle.outputs["MigrationBucketName"])["Policy"]
    key_policy = handle.client("kms").get_key_policy(KeyId=prod["key"], PolicyName="default")["Policy"]
    secrets = handle.client("secretsmanager")
    secret_policies = {arn: secrets.get_resource_policy(SecretId=arn).get("ResourcePolicy")
                       for arn in (prod["writer_secret"], prod["master_secret"])}
    for outsider in outsiders:
        context = {"aws:SecureTransport": "true", "aws:PrincipalArn": outsider,
                   "kms:CallerAccount": outsider.split(":")[4], "kms:ViaService": "ssm.us-east-1.amazonaws.com"}
        for request in (Request("s3:GetObject", prod["object"], outsider, context),
                        Request("s3:ListBucket", prod["bucket"], outsider, context)):
            assert evaluate([bucket_policy], request) == DENY, request
        assert evaluate([key_policy], Request("kms:Decrypt", prod["key"], outsider, context)) == DENY
        for arn, policy in secret_policies.items():
            if policy:
                assert evaluate([policy], Request("secretsmanager:GetSecretValue", arn, outsider, context)) == DENY

    # Control: the evaluator does allow prod's own sync role to read its own connection.
    _, identity = role_policies(system, "prod", "envsync-prod-sync")
    assert evaluate(identity, Request("ssm:GetParameter", prod["writer_parameter"])) == ALLOW
    assert evaluate(identity, Request("secretsmanager:GetSecretValue", prod["writer_secret"])) == ALLOW
    assert evaluate(identity, Request("secretsmanager:GetSecretValue", prod["master_secret"])) == DENY


def test_moto_enforced_iam_source_reader_cannot_touch_the_upstream_bucket(system):
    dev, staging, prod = system.handles
    endpoint = system.endpoint_url
    staging_env = staging.client("lambda").get_function_configuration(
        FunctionName="envsync-staging-refdata")["Environment"]["Variables"]
    # Sessions taken before enforcement: moto cannot evaluate the Service-principal trust of the
    # Lambda role when the deployer assumes it (its check crashes on {"Service": ...}).
    staging_sync = assume(staging.session, endpoint, staging.outputs["SyncRoleArn"])
    prod_sync = assume(prod.session, endpoint, prod.outputs["SyncRoleArn"])
    # moto hands out credentials for a role that does not exist (unenforced): what can they do?
    made_up = assume(staging_sync, endpoint,
                     f"arn:aws:iam::{system.launched.envs['prod'].account_id}:role/envsync-prod-source-reader")
    bucket = dev.outputs["MigrationBucketName"]
    outcomes: Dict[str, str] = {}

    def attempt(label: str, call) -> None:
        try:
            call()
            outcomes[label] = "allowed"
        except ClientError as error:
            code = error.response["Error"]["Code"]
            # moto answers SSM/Secrets Manager denials as XML the JSON protocol cannot parse
            outcomes[label] = "AccessDenied" if code == "403" and "AccessDenied" in str(error) else code
        except Exception as error:  # e.g. moto answering 500 for credentials of a missing role
            outcomes[label] = type(error).__name__

    with iam_enforced(endpoint):
        sts = staging_sync.client("sts", endpoint_url=endpoint)
        attempt("assume upstream reader", lambda: sts.assume_role(
            RoleArn=staging_env["ENVSYNC_UPSTREAM_READER_ROLE_ARN"], RoleSessionName="e2e",
            ExternalId=staging_env["ENVSYNC_UPSTREAM_EXTERNAL_ID"]))
        attempt("assume dev sync role", lambda: sts.assume_role(
            RoleArn=dev.outputs["SyncRoleArn"], RoleSessionName="e2e"))
        attempt("assume staging's own reader", lambda: sts.assume_role(
            RoleArn=staging.outputs["SourceReaderRoleArn"], RoleSessionName="e2e"))
        attempt("staging assumes a prod reader", lambda: sts.assume_role(
            RoleArn=f"arn:aws:iam::{system.launched.envs['prod'].account_id}:role/envsync-prod-source-reader",
            RoleSessionName="e2e"))
        attempt("prod assumes a prod reader", lambda: prod_sync.client("sts", endpoint_url=endpoint).assume_role(
            RoleArn=f"arn:aws:iam::{system.launched.envs['prod'].account_id}:role/envsync-prod-source-reader",
            RoleSessionName="e2e"))
        reader = credentials_session(sts.assume_role(
            RoleArn=staging_env["ENVSYNC_UPSTREAM_READER_ROLE_ARN"], RoleSessionName="e2e",
            ExternalId=staging_env["ENVSYNC_UPSTREAM_EXTERNAL_ID"])["Credentials"])
        s3 = reader.client("s3", endpoint_url=endpoint)
        attempt("list migrations", lambda: s3.list_objects_v2(Bucket=bucket, Prefix="migrations/"))
        attempt("get migration", lambda: s3.get_object(Bucket=bucket, Key="migrations/V1__reference_tables.sql"))
        attempt("put migration", lambda: s3.put_object(Bucket=bucket, Key="migrations/V99__evil.sql", Body=b"DROP"))
        attempt("delete migration", lambda: s3.delete_object(Bucket=bucket, Key="migrations/V1__reference_tables.sql"))
        attempt("read artifacts bucket", lambda: s3.list_objects_v2(
            Bucket=f"envsync-dev-artifacts-{system.launched.envs['dev'].account_id}"))
        attempt("read writer secret", lambda: reader.client("secretsmanager", endpoint_url=endpoint)
                .get_secret_value(SecretId=dev.outputs["WriterSecretArn"]))
        attempt("read writer parameter", lambda: reader.client("ssm", endpoint_url=endpoint).get_parameter(
            Name="/envsync/dev/db/envsync_writer/connection", WithDecryption=True))
        prod_bucket = prod.outputs["MigrationBucketName"]
        attempt("made-up prod reader lists prod bucket", lambda: made_up.client("s3", endpoint_url=endpoint)
                .list_objects_v2(Bucket=prod_bucket))
        attempt("made-up prod reader reads prod parameter", lambda: made_up.client("ssm", endpoint_url=endpoint)
                .get_parameter(Name="/envsync/prod/db/envsync_writer/connection", WithDecryption=True))
    assert outcomes == {
        "assume upstream reader": "allowed",
        "assume dev sync role": "AccessDenied",
        "assume staging's own reader": "AccessDenied",
        "staging assumes a prod reader": "AccessDenied",
        "prod assumes a prod reader": "AccessDenied",
        "list migrations": "AccessDenied",
        "get migration": "AccessDenied",
        "put migration": "AccessDenied",
        "delete migration": "AccessDenied",
        "read artifacts bucket": "AccessDenied",
        # moto evaluates these against resource "*": denied for the wrong reason too, so the
        # deployed-policy tests above carry the proof for SSM and Secrets Manager.
        "read writer secret": "AccessDenied",
        "read writer parameter": "AccessDenied",
        "made-up prod reader lists prod bucket": outcomes["made-up prod reader lists prod bucket"],
        "made-up prod reader reads prod parameter": outcomes["made-up prod reader reads prod parameter"],
    }, outcomes
    assert outcomes["made-up prod reader lists prod bucket"] != "allowed"
    assert outcomes["made-up prod reader reads prod parameter"] != "allowed"
    # Nothing was written by the attempts.
    keys = [o["Key"] for o in dev.client("s3").list_objects_v2(Bucket=bucket, Prefix="migrations/")["Contents"]]
    assert "migrations/V99__evil.sql" not in keys and "migrations/V1__reference_tables.sql" in keys


# ---------------------------------------------------------------- secrets never shown

def secret_values(system) -> Dict[str, str]:
    """Every password of every version of every secret in every account (plus rotated-out ones)."""
    found: Dict[str, str] = {}
    for handle in system.handles:
        secrets = handle.client("secretsmanager")
        for secret in secrets.list_secrets()["SecretList"]:
            for version in secrets.list_secret_version_ids(SecretId=secret["ARN"])["Versions"]:
                try:
                    stored = secrets.get_secret_value(SecretId=secret["ARN"], VersionId=version["VersionId"])
                except ClientError:
                    continue  # a version staged for a rotation that never stored a value
                value = json.loads(stored["SecretString"])
                found[f"{secret['Name']}@{version['VersionId'][:8]}"] = value["password"]
    for index, password in enumerate(system.retired_passwords):
        found[f"rotated-out #{index}"] = password
    return found


def log_events(handle) -> List[str]:
    logs = handle.client("logs")
    messages = []
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            for events in logs.get_paginator("filter_log_events").paginate(logGroupName=group["logGroupName"]):
                messages += [f"{group['logGroupName']}: {event['message']}" for event in events["events"]]
    return messages


def test_secrets_never_appear_in_logs_outputs_parameters_or_printed_output(system):
    passwords = secret_values(system)
    assert len(passwords) >= 8 and all(len(p) >= 8 for p in passwords.values()), sorted(passwords)
    haystacks: Dict[str, List[str]] = {"printed by the local cycle": system.printed,
                                       "sceptre launch output": list(system.launched.launch_logs.values()),
                                       "SNS notices the cycle read": [json.dumps(system.report["notices"])]}
    for handle in system.handles:
        events = log_events(handle)
        assert sum(": " in e and "finished" in e for e in events) >= 5, f"{handle.name}: too few log events"
        haystacks[f"{handle.name} CloudWatch Logs"] = events
        notices = inbox_messages(handle)  # what SNS delivered since (failure reports hold run state)
        haystacks[f"{handle.name} SNS notices"] = [json.dumps(notices)]
        stacks = handle.client("cloudformation").describe_stacks()["Stacks"]
        haystacks[f"{handle.name} stack outputs and parameters"] = [
            json.dumps([stack.get("Outputs", []), stack.get("Parameters", [])]) for stack in stacks]
        ssm = handle.client("ssm")
        parameters = [p for page in ssm.get_paginator("get_parameters_by_path").paginate(
            Path="/", Recursive=True, WithDecryption=True) for p in page["Parameters"]]
        connection = [p for p in parameters if p["Name"].endswith("/connection")]
        assert connection and all(p["Type"] == "SecureString" for p in connection)
        for parameter in connection:
            value = json.loads(parameter["Value"])
            assert "password" not in {k.lower() for k in value}, parameter["Name"]
            assert value["secret_arn"].startswith("arn:aws:secretsmanager:"), parameter["Name"]
        haystacks[f"{handle.name} SSM parameters (decrypted)"] = [p["Value"] for p in parameters]
        haystacks[f"{handle.name} Lambda configurations"] = [
            json.dumps(f.get("Environment", {})) for f in handle.client("lambda").list_functions()["Functions"]]
    leaks = [(where, name) for where, texts in haystacks.items() for text in texts
             for name, password in passwords.items() if password in text]
    assert not leaks, f"secrets found: {leaks}"
