"""Read the deployed world back from the stand-in for the dynamic proof (thin boto3 edge)."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional

import boto3
from botocore.exceptions import ClientError

from envsync_local.proof.dynamic import HARNESS_SESSIONS, World
from envsync_tools.proof.policy import Principal


def _document(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def load_account(world: World, session: boto3.Session, endpoint_url: str) -> None:
    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url, region_name="us-east-1")

    account = client("sts").get_caller_identity()["Account"]
    iam = client("iam")
    for role in iam.list_roles()["Roles"]:
        name, arn = role["RoleName"], role["Arn"]
        policies = [_document(iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"])
                    for p in iam.list_role_policies(RoleName=name)["PolicyNames"]]
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
            policies.append(_document(version["PolicyVersion"]["Document"]))
        boundary = None
        described = iam.get_role(RoleName=name)["Role"]
        if described.get("PermissionsBoundary"):
            boundary_arn = described["PermissionsBoundary"]["PermissionsBoundaryArn"]
            policy = iam.get_policy(PolicyArn=boundary_arn)["Policy"]
            boundary = _document(iam.get_policy_version(PolicyArn=boundary_arn, VersionId=policy["DefaultVersionId"])
                                 ["PolicyVersion"]["Document"])
        world.roles[arn] = Principal(arn=arn, identity_policies=policies, boundary=boundary)
        world.trust[arn] = _document(described["AssumeRolePolicyDocument"])
    kms = client("kms")
    for key in kms.list_keys()["Keys"]:
        policy = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
        world.key_policies[key["KeyArn"]] = _document(policy)
        world.key_ids[key["KeyId"]] = key["KeyArn"]
    for alias in kms.list_aliases()["Aliases"]:
        if alias.get("TargetKeyId") in world.key_ids:
            world.key_ids[alias["AliasName"]] = world.key_ids[alias["TargetKeyId"]]
            if alias.get("AliasArn"):  # another account's key is named by its alias ARN
                world.key_ids[alias["AliasArn"]] = world.key_ids[alias["TargetKeyId"]]
    s3 = client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        try:
            world.bucket_policies[name] = _document(s3.get_bucket_policy(Bucket=name)["Policy"])
        except ClientError:
            pass
        try:
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
            key = rules[0]["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID")
            if key:
                world.encryption[f"arn:aws:s3:::{name}"] = world.key_arn(key) or key
        except ClientError:
            pass
    ssm = client("ssm")
    for parameter in ssm.describe_parameters()["Parameters"]:
        if parameter.get("Type") == "SecureString":
            arn = f"arn:aws:ssm:us-east-1:{account}:parameter{parameter['Name']}"
            world.encryption[arn] = world.key_arn(parameter.get("KeyId")) or "alias/aws/ssm"
    secrets = client("secretsmanager")
    for secret in secrets.list_secrets()["SecretList"]:
        world.encryption[f"secret-name:{secret['Name']}"] = secret["ARN"]
        if secret.get("KmsKeyId"):
            world.encryption[secret["ARN"]] = world.key_arn(secret["KmsKeyId"]) or secret["KmsKeyId"]
    sns = client("sns")
    for topic in sns.list_topics()["Topics"]:
        key = sns.get_topic_attributes(TopicArn=topic["TopicArn"])["Attributes"].get("KmsMasterKeyId")
        if key:
            world.encryption[topic["TopicArn"]] = world.key_arn(key) or key
    for endpoint in client("ec2").describe_vpc_endpoints()["VpcEndpoints"]:
        service = endpoint["ServiceName"].rsplit(".", 1)[-1]
        if endpoint.get("PolicyDocument"):
            world.endpoints[(account, service)] = _document(endpoint["PolicyDocument"])
    states = client("stepfunctions")
    for machine in states.list_state_machines()["stateMachines"]:
        described = states.describe_state_machine(stateMachineArn=machine["stateMachineArn"])
        key = (described.get("encryptionConfiguration") or {}).get("kmsKeyId")
        if key:
            world.encryption[machine["stateMachineArn"]] = world.key_arn(key) or key


def external_principals(trusted_principal: str,
                        approver_principal: Optional[str] = None) -> Callable[[Dict[str, Any]], Optional[Principal]]:
    """Callers outside the project's roles: the CI principal behind the base credentials (its own
    policies are the user's; only the trust of what it assumes is ours to prove), the approvers'
    principal when the base credentials assume an approver role (`envsync approve` offline:
    one set of local credentials stands for both), and the Lambda service assuming a function's
    role. Harness sessions are not judged."""
    def outside(arn: str) -> Principal:
        return Principal(arn=arn, identity_policies=[{"Statement": [{"Effect": "Allow", "Action": "*",
                                                                     "Resource": "*"}]}])

    ci = outside(trusted_principal)
    approvers = outside(approver_principal) if approver_principal else ci
    lambda_service = Principal(arn="lambda.amazonaws.com", service=True)

    def principal_of(call: Dict[str, Any]) -> Optional[Principal]:
        session = str(call.get("params", {}).get("RoleSessionName") or "")
        if session in HARNESS_SESSIONS or call["action"] != "sts:AssumeRole":
            return None  # the base credentials' other calls are the harness's (status, tests)
        if str(call["params"].get("RoleArn", "")).endswith("-approver"):
            return approvers
        return lambda_service if session.startswith("lambda-") else ci

    return principal_of


def load_world(base: boto3.Session, endpoint_url: str, accounts: Dict[str, str],
               admin_role_name: str = "OrganizationAccountAccessRole") -> World:
    """The deployed world of every account (env -> account id), read as each account's admin."""
    from envsync_local.cli import assume_session

    world = World(env_accounts=dict(accounts))
    for account in accounts.values():
        session = assume_session(base, endpoint_url, f"arn:aws:iam::{account}:role/{admin_role_name}")
        load_account(world, session, endpoint_url)
    return world
