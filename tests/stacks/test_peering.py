"""The peering stacks: dev<->staging and staging<->prod only, MySQL 3306 only, routes both sides."""

from __future__ import annotations

import ipaddress

import pytest

from envsync_tools.proof.cfn_eval import statements

CIDRS = {"dev": "10.1.0.0/16", "staging": "10.2.0.0/16", "prod": "10.3.0.0/16"}
LINKS = {("staging", "dev"), ("prod", "staging")}  # (downstream/requester, upstream/accepter)


def peering_stacks(env_stacks):
    return {name: env_stacks.user_data(name) for name in env_stacks.rendered
            if name.split("/")[1].startswith("peering")}


def test_only_the_promotion_links_are_peered_never_prod_with_dev(env_stacks):
    stacks = peering_stacks(env_stacks)
    requesters = {(d["env"], d["peer_env"]) for d in stacks.values() if d["side"] == "requester"}
    accepters = {(d["peer_env"], d["env"]) for d in stacks.values() if d["side"] == "accepter"}
    assert requesters == accepters == LINKS
    for name, data in stacks.items():
        assert {data["env"], data["peer_env"]} != {"dev", "prod"}
        assert name.split("/")[0] == data["env"]  # each side in its own env's folder/account
        assert str(data["peer_cidr"]) == CIDRS[data["peer_env"]]
    assert "prod/peering-downstream" not in env_stacks.rendered  # prod accepts nothing


def test_peering_template_refuses_prod_dev_and_a_prod_accepter():
    import importlib.util

    from tests.conftest import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("peering", PROJECT_ROOT / "templates" / "peering.py")
    peering = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peering)
    base = {"side": "requester", "env": "prod", "peer_env": "dev", "peer_cidr": "10.1.0.0/16",
            "peer_account_id": "111111111111"}
    with pytest.raises(ValueError, match="never peered"):
        peering.build_template(base)
    with pytest.raises(ValueError, match="never a source"):
        peering.build_template({**base, "side": "accepter", "peer_env": "staging",
                                "peer_cidr": "10.2.0.0/16", "is_prod": True})


@pytest.mark.parametrize("downstream,upstream", sorted(LINKS))
def test_requester_creates_the_cross_account_peering_and_its_routes(env_stacks, downstream, upstream):
    evaluated = env_stacks.evaluated(f"{downstream}/peering-upstream")
    (connection,) = evaluated.of_type("AWS::EC2::VPCPeeringConnection").values()
    props = connection["Properties"]
    upstream_account = env_stacks.account(upstream)
    assert props["PeerOwnerId"] == upstream_account
    assert props["VpcId"] == evaluated.parameters["VpcId"]
    assert props["PeerVpcId"] == evaluated.parameters["PeerVpcId"]
    assert props["PeerRoleArn"] == evaluated.parameters["PeerRoleArn"]
    assert props["PeerRoleArn"].split(":")[4] == upstream_account
    raw = env_stacks.raw_parameters(f"{downstream}/peering-upstream")
    # Read from the upstream's stacks with the upstream's deployer role (no cross-account dependency).
    assert raw["PeerRoleArn"].argument["stack"] == f"envsync-{upstream}-peering-downstream"
    assert raw["PeerVpcId"].argument["role"] == env_stacks.envs[upstream].sceptre_role
    assert not [d for d in env_stacks.stacks[f"{downstream}/peering-upstream"].dependencies
                if not str(getattr(d, "name", d)).startswith(f"{downstream}/")]
    routes = evaluated.of_type("AWS::EC2::Route")
    assert {r["Properties"]["RouteTableId"] for r in routes.values()} == {
        evaluated.parameters["PrivateRouteTable1Id"], evaluated.parameters["PrivateRouteTable2Id"]}
    for route in routes.values():
        assert route["Properties"]["DestinationCidrBlock"] == CIDRS[upstream]
        assert route["Properties"]["VpcPeeringConnectionId"] == {"Ref": "PeeringConnection"}


@pytest.mark.parametrize("downstream,upstream", sorted(LINKS))
def test_accepter_routes_come_from_the_upstream_account_with_the_peering_id(env_stacks, downstream, upstream):
    name = f"{upstream}/peering-downstream"
    evaluated = env_stacks.evaluated(name)
    raw = env_stacks.raw_parameters(name)["PeeringConnectionId"].argument
    assert raw["stack"] == f"envsync-{downstream}-peering-upstream"
    assert raw["output"] == "PeeringConnectionId"
    assert raw["role"].split(":")[4] == env_stacks.account(downstream)
    routes = evaluated.of_type("AWS::EC2::Route")
    assert len(routes) == 2
    for route in routes.values():
        assert route["Properties"]["DestinationCidrBlock"] == CIDRS[downstream]
        assert route["Properties"]["VpcPeeringConnectionId"] == evaluated.parameters["PeeringConnectionId"]
    # Before the downstream exists (first launch), the stack has no routes but everything else.
    from envsync_tools.proof.cfn_eval import Evaluated

    values = {**env_stacks.parameter_values(name), "PeeringConnectionId": ""}
    first_pass = Evaluated(env_stacks.rendered[name], values, env_stacks.account(upstream))
    assert not first_pass.of_type("AWS::EC2::Route")
    assert first_pass.of_type("AWS::IAM::Role")


@pytest.mark.parametrize("downstream,upstream", sorted(LINKS))
def test_accepter_role_accepts_only_peering_from_the_downstream_account_into_this_vpc(
        env_stacks, downstream, upstream):
    evaluated = env_stacks.evaluated(f"{upstream}/peering-downstream")
    (role,) = evaluated.of_type("AWS::IAM::Role").values()
    (trust,) = statements(role["Properties"]["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{env_stacks.account(downstream)}:root"}
    assert trust["Condition"]["ArnEquals"]["aws:PrincipalArn"] == (
        f"arn:aws:iam::{env_stacks.account(downstream)}:role/envsync-cfn-exec")
    (policy,) = role["Properties"]["Policies"]
    found = statements(policy["PolicyDocument"])
    assert {s["Action"] for s in found} == {"ec2:AcceptVpcPeeringConnection"}
    own_vpc = f"arn:aws:ec2:us-east-1:{env_stacks.account(upstream)}:vpc/{evaluated.parameters['VpcId']}"
    connection = next(s for s in found if "vpc-peering-connection" in s["Resource"])
    assert connection["Condition"]["ArnLike"]["ec2:RequesterVpc"] == (
        f"arn:aws:ec2:us-east-1:{env_stacks.account(downstream)}:vpc/*")
    assert connection["Condition"]["ArnEquals"]["ec2:AccepterVpc"] == own_vpc
    assert {s["Resource"] for s in found if s is not connection} == {own_vpc}


def nacl_rules(evaluated):
    return [entry["Properties"] for entry in evaluated.of_type("AWS::EC2::NetworkAclEntry").values()]


@pytest.mark.parametrize("stack", ["staging/peering-upstream", "prod/peering-upstream",
                                   "dev/peering-downstream", "staging/peering-downstream"])
def test_peer_traffic_is_mysql_3306_and_its_return_path_only(env_stacks, stack):
    evaluated = env_stacks.evaluated(stack)
    side = env_stacks.user_data(stack)["side"]
    peer = CIDRS[env_stacks.user_data(stack)["peer_env"]]
    rules = nacl_rules(evaluated)
    assert all(100 <= rule["RuleNumber"] <= 199 for rule in rules)  # the band network reserves
    assert all(rule["CidrBlock"] == peer for rule in rules)
    for egress in (True, False):
        ordered = sorted((r for r in rules if r["Egress"] is egress), key=lambda r: r["RuleNumber"])
        allows = [r for r in ordered if r["RuleAction"] == "allow"]
        deny = next(r for r in ordered if r["RuleAction"] == "deny" and r["Protocol"] == -1)
        assert ordered[-1] is deny and all(a["RuleNumber"] < deny["RuleNumber"] for a in allows)
        (allow,) = allows
        assert allow["Protocol"] == 6
        mysql_direction = egress if side == "requester" else not egress
        expected = (3306, 3306) if mysql_direction else (1024, 65535)
        assert (allow["PortRange"]["From"], allow["PortRange"]["To"]) == expected
        if side == "requester" and not egress:
            # The replies' range holds 3306: the initiating side refuses it first.
            first = ordered[0]
            assert (first["RuleAction"], first["Protocol"], first["PortRange"]) == (
                "deny", 6, {"From": 3306, "To": 3306})
            assert first["RuleNumber"] < allow["RuleNumber"]
    groups = [r["Properties"] for r in evaluated.resources.values()
              if r["Type"] in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")]
    (rule,) = groups
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 3306, 3306)
    if side == "requester":
        assert rule["CidrIp"] == peer
        assert next(iter(evaluated.of_type("AWS::EC2::SecurityGroupEgress").values()))["Properties"] == rule
    else:
        # The downstream's Lambda security group, across the peering; never a CIDR.
        peer_env = env_stacks.user_data(stack)["peer_env"]
        assert "CidrIp" not in rule
        assert rule["SourceSecurityGroupOwnerId"] == env_stacks.account(peer_env)
        assert rule["SourceSecurityGroupId"].startswith("sg-")


def test_network_rules_come_after_the_peering_band(env_stacks):
    """The peer deny (<200) is evaluated before network's 0.0.0.0/0 rules (>=200)."""
    for env in CIDRS:
        network = env_stacks.evaluated(f"{env}/network")
        numbers = [e["Properties"]["RuleNumber"] for e in network.of_type("AWS::EC2::NetworkAclEntry").values()]
        assert min(numbers) >= 200
        assert all(not ipaddress.ip_network(CIDRS[env]).overlaps(ipaddress.ip_network(other))
                   for other in CIDRS.values() if other != CIDRS[env])
