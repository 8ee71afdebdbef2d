"""The network stack of each env, asserted on what `sceptre generate` renders for it."""

from __future__ import annotations

import ipaddress

import pytest

EXPECTED_CIDRS = {"dev": "10.1.0.0/16", "staging": "10.2.0.0/16", "prod": "10.3.0.0/16"}
INTERFACE_SERVICES = {"ssm", "secretsmanager", "kms", "sts", "logs", "monitoring", "sns", "states"}
ENVS = sorted(EXPECTED_CIDRS)


def resources_of(template: dict, resource_type: str) -> dict:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


@pytest.fixture(params=ENVS)
def network(request, rendered_templates):
    return request.param, rendered_templates[f"{request.param}/network"]


def test_vpc_has_the_env_cidr(network):
    env, template = network
    (vpc,) = resources_of(template, "AWS::EC2::VPC").values()
    assert vpc["Properties"]["CidrBlock"] == EXPECTED_CIDRS[env]


def test_two_private_subnets_in_two_distinct_azs_inside_the_vpc(network):
    env, template = network
    subnets = resources_of(template, "AWS::EC2::Subnet").values()
    assert len(subnets) == 2
    az_indexes = {s["Properties"]["AvailabilityZone"]["Fn::Select"][0] for s in subnets}
    assert az_indexes == {0, 1}
    vpc = ipaddress.ip_network(EXPECTED_CIDRS[env])
    blocks = [ipaddress.ip_network(s["Properties"]["CidrBlock"]) for s in subnets]
    assert all(block.subnet_of(vpc) for block in blocks)
    assert not blocks[0].overlaps(blocks[1])
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets)


def test_no_path_to_the_internet(network):
    _, template = network
    types = {r["Type"] for r in template["Resources"].values()}
    assert not types & {"AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::VPCGatewayAttachment",
                        "AWS::EC2::EgressOnlyInternetGateway", "AWS::EC2::EIP"}
    for route in resources_of(template, "AWS::EC2::Route").values():
        assert route["Properties"].get("DestinationCidrBlock") != "0.0.0.0/0"
    assert len(resources_of(template, "AWS::EC2::RouteTable")) == 2


def _rules(template: dict):
    """(direction, protocol, from, to, peer) of every SG rule, inline or standalone."""
    rules = []
    for name, sg in resources_of(template, "AWS::EC2::SecurityGroup").items():
        for key, direction in (("SecurityGroupIngress", "in"), ("SecurityGroupEgress", "out")):
            for rule in sg["Properties"].get(key, []):
                rules.append((name, direction, rule))
    standalone = (("AWS::EC2::SecurityGroupIngress", "in"), ("AWS::EC2::SecurityGroupEgress", "out"))
    for kind, direction in standalone:
        for rule in resources_of(template, kind).values():
            rules.append((rule["Properties"]["GroupId"]["Ref"], direction, rule["Properties"]))
    return rules


def test_security_groups_open_mysql_to_the_db_and_https_to_endpoints_only(network):
    _, template = network
    for group, direction, rule in _rules(template):
        if rule.get("Description") == "no egress":
            assert rule["CidrIp"] == "127.0.0.1/32"
            continue
        assert rule["IpProtocol"] == "tcp", (group, rule)
        assert rule["FromPort"] == rule["ToPort"], (group, rule)
        port = rule["FromPort"]
        if group == "DbSecurityGroup":
            assert (direction, port) == ("in", 3306)
            assert rule["SourceSecurityGroupId"] == {"Ref": "LambdaSecurityGroup"}
        elif group == "EndpointSecurityGroup":
            assert (direction, port) == ("in", 443)
            assert rule["CidrIp"] == template["Resources"]["Vpc"]["Properties"]["CidrBlock"]
        else:
            assert group == "LambdaSecurityGroup" and direction == "out"
            assert port in (3306, 443)
            assert rule.get("CidrIp") != "0.0.0.0/0"
    db_ingress = [r for g, d, r in _rules(template) if g == "DbSecurityGroup" and d == "in"]
    assert len(db_ingress) == 1


def test_nacl_allows_only_mysql_https_and_return_traffic(network):
    env, template = network
    entries = resources_of(template, "AWS::EC2::NetworkAclEntry").values()
    assert entries
    for entry in entries:
        props = entry["Properties"]
        assert props["Protocol"] == 6 and props["RuleAction"] == "allow"
        assert props["RuleNumber"] >= 200, "100-199 belong to the peering stacks"
        span = (props["PortRange"]["From"], props["PortRange"]["To"])
        assert span in {(3306, 3306), (443, 443), (1024, 65535)}
        if props["CidrBlock"] == "0.0.0.0/0":
            # Only HTTPS out to the S3 gateway endpoint and its replies.
            assert span == ((443, 443) if props["Egress"] else (1024, 65535))
        else:
            assert props["CidrBlock"] == EXPECTED_CIDRS[env]
    associations = resources_of(template, "AWS::EC2::SubnetNetworkAclAssociation")
    assert len(associations) == 2


def test_endpoints_for_every_api_the_lambdas_call(network):
    _, template = network
    endpoints = resources_of(template, "AWS::EC2::VPCEndpoint").values()
    by_service = {
        e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]: e["Properties"] for e in endpoints
    }
    assert set(by_service) == INTERFACE_SERVICES | {"s3"}
    assert by_service["s3"]["VpcEndpointType"] == "Gateway"
    assert len(by_service["s3"]["RouteTableIds"]) == 2
    for service in INTERFACE_SERVICES:
        props = by_service[service]
        assert props["VpcEndpointType"] == "Interface" and props["PrivateDnsEnabled"] is True
        assert props["SecurityGroupIds"] == [{"Ref": "EndpointSecurityGroup"}]
        assert len(props["SubnetIds"]) == 2


def test_flow_logs_go_to_a_kms_encrypted_log_group(network):
    _, template = network
    (flow_log,) = resources_of(template, "AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    (group,) = resources_of(template, "AWS::Logs::LogGroup").values()
    assert group["Properties"]["KmsKeyId"] == {"Ref": "KmsKeyArn"}
    assert group["Properties"]["RetentionInDays"]
