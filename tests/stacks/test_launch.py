"""The data-plane stacks launched offline with real `sceptre launch` (moto, envsync's models).

Uses the suite's `launched` project, launched as `envsync-local up` does: dev, staging, prod,
then each upstream's accepter stack once more, since the return routes need the downstream's
peering connection to exist.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.chain import chain
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.launched

ENVS = chain()  # config/config.yaml envs:, upstream first
DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
STACKS = {
    "dev": {"artifacts", "aurora", "sync", "peering-downstream"},
    "staging": {"artifacts", "aurora", "sync", "peering-upstream", "peering-downstream"},
    "prod": {"artifacts", "aurora", "sync", "peering-upstream"},
}
CIDRS = {"dev": "10.1.0.0/16", "staging": "10.2.0.0/16", "prod": "10.3.0.0/16"}


def test_data_plane_stacks_launch_into_their_own_accounts(launched):
    for env in ENVS:
        client = launched.client(env, "cloudformation")
        stacks = {s["StackName"]: s for s in client.describe_stacks()["Stacks"]}
        for stack in STACKS[env]:
            described = stacks.get(f"envsync-{env}-{stack}")
            assert described, f"envsync-{env}-{stack} missing from {env}'s account"
            assert described["StackStatus"] in DONE, (stack, described["StackStatus"])
            assert described["StackId"].split(":")[4] == launched.envs[env].account_id


def test_lambda_code_is_uploaded_by_content_hash(launched):
    import hashlib

    for env in ENVS:
        bucket = launched.outputs(env, "artifacts")["BucketName"]
        s3 = launched.client(env, "s3")
        objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        packages = {o["Key"] for o in objects if o["Key"].startswith("lambda/envsync-")}
        for key in packages:  # the key is the SHA-256 of the bytes stored under it
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert key == f"lambda/envsync-{hashlib.sha256(body).hexdigest()}.zip"
        for stack in ("aurora", "sync"):  # both stacks run the uploaded package
            described = launched.client(env, "cloudformation").describe_stacks(
                StackName=f"envsync-{env}-{stack}")["Stacks"][0]
            parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
            assert parameters["LambdaCodeKey"] in packages
        function = launched.client(env, "lambda").get_function(FunctionName=f"envsync-{env}-migrate")
        assert function["Configuration"]["Timeout"] == 300


def test_connection_strings_are_secure_strings_with_the_env_key(launched):
    for env in ENVS:
        key_arn = launched.outputs(env, "kms")["KeyArn"]
        ssm = launched.client(env, "ssm")
        users = ["envsync_writer"] + ([] if env == "prod" else ["envsync_reader"])
        for user in users:
            name = f"/envsync/{env}/db/{user}/connection"
            (described,) = ssm.describe_parameters(
                ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
            assert described["Type"] == "SecureString"
            assert described["KeyId"] in (key_arn, key_arn.split("/")[-1])
            value = json.loads(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
            assert value["user"] == user and value["tls"] is True and "password" not in value


def test_peering_is_active_with_routes_on_both_sides(launched):
    for downstream, upstream in (("staging", "dev"), ("prod", "staging")):
        peering_id = launched.outputs(downstream, "peering-upstream")["PeeringConnectionId"]
        ec2 = launched.client(downstream, "ec2")
        (connection,) = ec2.describe_vpc_peering_connections(
            VpcPeeringConnectionIds=[peering_id])["VpcPeeringConnections"]
        assert connection["AccepterVpcInfo"]["OwnerId"] == launched.envs[upstream].account_id
        for env, peer in ((downstream, upstream), (upstream, downstream)):
            tables = launched.outputs(env, "network")["PrivateRouteTableIds"].split(",")
            routes = launched.client(env, "ec2").describe_route_tables(RouteTableIds=tables)["RouteTables"]
            for table in routes:
                assert any(r.get("DestinationCidrBlock") == CIDRS[peer]
                           and r.get("VpcPeeringConnectionId") == peering_id for r in table["Routes"]), (env, peer)


def normalised(line: str) -> str:
    """'-  Key: '[''a'', ''b'']'' (moto's list repr) -> '-  Key: a,b'."""
    import re

    match = re.match(r"^([+-]\s*\w+: )'\[(.*)\]'$", line)
    if not match:
        return line
    items = [item.strip().strip("'") for item in match.group(2).split(",")]
    return match.group(1) + ",".join(items)


def test_diff_after_a_prod_instance_class_edit_shows_only_that_change(launched, tmp_path):
    project = tmp_path / "project"
    for folder in ("config", "templates", "lambda_code"):
        shutil.copytree(PROJECT_ROOT / folder, project / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    import os
    import subprocess

    from envsync_local.paths import tool
    from envsync_sceptre.packaging.package import CA_BUNDLE_DIR_ENV

    env = {**os.environ, **launched.local.moto.aws_env(), CA_BUNDLE_DIR_ENV: str(launched.local.ca_bundle_dir)}
    env.pop("AWS_PROFILE", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([tool("sceptre"), "--dir", str(project), "--no-colour", *args],
                              env=env, capture_output=True, text=True, check=False, timeout=300)

    # Deployed = this copy first (the shared tree's code may have moved on since the launch).
    relaunch = run("launch", "-y", "prod/aurora.yaml")
    assert relaunch.returncode == 0, (relaunch.stdout + relaunch.stderr)[-4000:]
    config = project / "config" / "prod" / "config.yaml"
    config.write_text(config.read_text() + "db_instance_class: db.r5.xlarge\n")
    result = run("diff", "-t", "difflib", "prod/aurora.yaml")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    changed = [normalised(line) for line in output.splitlines()
               if line[:1] and line[0] in "+-" and not line.startswith(("+++", "---"))]
    # moto describes a List<> parameter as a Python list repr ("['subnet-a', 'subnet-b']"),
    # AWS as "subnet-a,subnet-b": the same value, not a change (remove once moto's fixed).
    changed = [line for line in changed
               if not ("-" + line[1:] in changed and "+" + line[1:] in changed)]
    assert len(changed) == 2, output[-4000:]
    removed, added = sorted(changed, key=lambda line: line[0] == "+")
    assert "DbInstanceClass" in removed and "db.r5.large" in removed
    assert "DbInstanceClass" in added and "db.r5.xlarge" in added
