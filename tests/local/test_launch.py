"""README command 1's core: every env launched offline with real `sceptre launch`, each stack in
its own simulated account, readable back through the AWS APIs."""

from __future__ import annotations

import pytest

from envsync_local.cli import sceptre
from tests.chain import chain

pytestmark = pytest.mark.launched

ENVS = chain()  # config/config.yaml envs:, upstream first
DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}


def stacks_in(launched, env: str) -> dict:
    described = launched.client(env, "cloudformation").describe_stacks()["Stacks"]
    return {stack["StackName"]: stack for stack in described}


def test_every_env_is_launched_into_its_own_account(launched):
    for env in ENVS:
        stacks = stacks_in(launched, env)
        assert {"bootstrap", "kms", "network"} <= {name.split("-", 2)[2] for name in stacks}
        for name, stack in stacks.items():
            assert name.startswith(f"envsync-{env}-"), f"{name} landed in {env}'s account"
            assert stack["StackStatus"] in DONE, (name, stack["StackStatus"])
            assert stack["StackId"].split(":")[4] == launched.envs[env].account_id


def test_launching_prod_puts_nothing_into_dev_or_staging(launched):
    """Sceptre issue #1262: a stack launched on behalf of another must use its own role."""
    before = launched.stacks_before_prod
    assert before["prod"] == set()
    for env in ("dev", "staging"):
        assert set(stacks_in(launched, env)) == before[env]


def test_network_is_readable_through_the_ec2_api(launched):
    for env in ENVS:
        outputs = launched.outputs(env, "network")
        ec2 = launched.client(env, "ec2")
        (vpc,) = ec2.describe_vpcs(VpcIds=[outputs["VpcId"]])["Vpcs"]
        assert vpc["CidrBlock"] == launched.envs[env].vpc_cidr == outputs["VpcCidr"]
        subnets = ec2.describe_subnets(SubnetIds=outputs["PrivateSubnetIds"].split(","))["Subnets"]
        assert len({subnet["AvailabilityZone"] for subnet in subnets}) == 2
        endpoints = ec2.describe_vpc_endpoints(
            Filters=[{"Name": "vpc-id", "Values": [outputs["VpcId"]]}])["VpcEndpoints"]
        services = {endpoint["ServiceName"].rsplit(".", 1)[1] for endpoint in endpoints}
        assert services == {"ssm", "secretsmanager", "kms", "sts", "logs", "monitoring", "sns", "states",
                            "s3"}
        gateways = ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [outputs["VpcId"]]}])["InternetGateways"]
        assert gateways == []
        flow_logs = ec2.describe_flow_logs(
            Filter=[{"Name": "resource-id", "Values": [outputs["VpcId"]]}])["FlowLogs"]
        assert len(flow_logs) == 1 and flow_logs[0]["TrafficType"] == "ALL"


def test_relaunch_is_idempotent(launched):
    before = {name: stack["StackId"] for name, stack in stacks_in(launched, "dev").items()}
    result = sceptre(launched.local, "launch", "-y", "dev", capture=True)
    assert result.returncode == 0, result.stdout + result.stderr
    after = {name: stack["StackId"] for name, stack in stacks_in(launched, "dev").items()}
    assert after == before


def test_sceptre_diff_right_after_the_launch_finds_no_difference_on_any_stack(launched):
    """What a user runs first (`envsync-local sceptre diff <env>`): every stack of every env
    reports "No difference" (a List<...> parameter read back as text, NoEcho as ****)."""
    import re

    for env in ENVS:
        result = sceptre(launched.local, "diff", "-t", "difflib", env, capture=True)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-3000:]
        differing = re.findall(r"Difference detected for stack (\S+)!", output)
        assert not differing, (differing, output[-4000:])
        compared = re.findall(r"No difference to deployed stack (\S+)", output)
        # the bootstrap and gate stacks are the administrator's (ignore: true): `sceptre diff <env>` skips them
        administrators = {f"envsync-{env}-bootstrap", f"envsync-{env}-gate"}
        assert set(compared) == set(stacks_in(launched, env)) - administrators, (env, compared)


def test_local_environment_is_printed_for_eval(launched, capsys):
    from envsync_local.cli import command_env

    assert command_env(launched.local) == 0
    printed = capsys.readouterr().out
    assert f"export AWS_ENDPOINT_URL={launched.local.moto.endpoint_url}" in printed
    assert "export ENVSYNC_CA_BUNDLE_DIR=" in printed and "unset AWS_PROFILE" in printed
