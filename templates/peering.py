"""envsync peering: one VPC peering per promotion link (dev<->staging, staging<->prod), never prod<->dev.

Sceptre Python template with two sides, chosen by `sceptre_user_data.side`:

- `requester` (stack in the DOWNSTREAM account, config/<downstream>/peering-upstream.yaml):
  the VPCPeeringConnection (PeerOwnerId, PeerVpcId, PeerRoleArn), routes to the upstream CIDR
  in the private route tables, the Lambda SG egress on 3306 and the NACL entries.
- `accepter` (stack in the UPSTREAM account, config/<upstream>/peering-downstream.yaml): the
  role the requester's CloudFormation assumes to accept (only peering from the downstream
  account's VPCs into this VPC), the NACL entries and - once the peering exists (and so is
  active) - the return routes and the DB SG ingress on 3306 from the downstream's Lambda
  security group (Condition HasPeering).

Traffic to and from the peer CIDR is TCP 3306 from downstream to upstream and its return path
only; NACL rules 100-199 are this stack's (the network stack's start at 200), so the deny of
everything else from/to the peer CIDR comes before the network's own 0.0.0.0/0 rules.
Nothing here lets the upstream open a connection into the downstream: prod is never a source.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Dict, List

from template_common import (
    AZ_COUNT,
    BOUNDARY,
    EPHEMERAL_PORTS,
    MYSQL_PORT,
    PEERING_NACL_RULES,
    document,
    nacl_entry,
    ref,
    sub,
)

SIDES = ("requester", "accepter")


def _tags(env: str, peer_env: str) -> List[Dict[str, str]]:
    return [
        {"Key": "Name", "Value": f"envsync-{env}-to-{peer_env}"},
        {"Key": "Env", "Value": env},
    ]


def _nacl_entry(egress: bool, number: int, cidr: str, action: str, protocol: int,
                ports: Any = None) -> Dict[str, Any]:
    return nacl_entry(ref("PrivateNetworkAclId"), egress, number, cidr, action, protocol, ports)


def nacl_entries(side: str, peer_cidr: str) -> Dict[str, Any]:
    """MySQL one way (downstream -> upstream) and its replies; all else to/from the peer denied."""
    rules = PEERING_NACL_RULES[side]
    allow, deny = rules["allow"], rules["deny"]
    mysql, ephemeral = (MYSQL_PORT, MYSQL_PORT), EPHEMERAL_PORTS
    if side == "requester":  # our Lambdas connect out to the upstream's database
        allowed = {
            # The replies' ephemeral range holds 3306: the side that only initiates refuses it.
            "PeerNaclInDenyMysql": _nacl_entry(False, rules["deny_mysql_in"], peer_cidr, "deny", 6, mysql),
            "PeerNaclOutMysql": _nacl_entry(True, allow, peer_cidr, "allow", 6, mysql),
            "PeerNaclInReplies": _nacl_entry(False, allow, peer_cidr, "allow", 6, ephemeral),
        }
    else:  # our database answers the downstream's Lambdas
        allowed = {
            "PeerNaclInMysql": _nacl_entry(False, allow, peer_cidr, "allow", 6, mysql),
            "PeerNaclOutReplies": _nacl_entry(True, allow, peer_cidr, "allow", 6, ephemeral),
        }
    denied = {
        "PeerNaclInDenyRest": _nacl_entry(False, deny, peer_cidr, "deny", -1),
        "PeerNaclOutDenyRest": _nacl_entry(True, deny, peer_cidr, "deny", -1),
    }
    return {**allowed, **denied}


def _routes(peer_cidr: str, condition: str = "") -> Dict[str, Any]:
    routes: Dict[str, Any] = {}
    for number in range(1, AZ_COUNT + 1):
        route: Dict[str, Any] = {
            "Type": "AWS::EC2::Route",
            "Properties": {
                "RouteTableId": ref(f"PrivateRouteTable{number}Id"),
                "DestinationCidrBlock": peer_cidr,
                "VpcPeeringConnectionId": ref("PeeringConnection" if not condition
                                               else "PeeringConnectionId"),
            },
        }
        if condition:
            route["Condition"] = condition
        routes[f"PeerRoute{number}"] = route
    return routes


def _paths_to_peer(side: str, peer_cidr: str) -> Dict[str, Any]:
    """Routes to the peer CIDR (the accepter's only once the peering exists) and the NACL entries."""
    routes = _routes(peer_cidr) if side == "requester" else _routes(peer_cidr, condition="HasPeering")
    return {**routes, **nacl_entries(side, peer_cidr)}


def _own_network_parameters() -> Dict[str, Any]:
    parameters: Dict[str, Any] = {
        "VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "This env's VPC (network stack)."},
        "PrivateNetworkAclId": {"Type": "String", "AllowedPattern": "^acl-[a-f0-9]+$"},
    }
    for number in range(1, AZ_COUNT + 1):
        parameters[f"PrivateRouteTable{number}Id"] = {
            "Type": "String", "AllowedPattern": "^rtb-[a-f0-9]+$",
        }
    return parameters


def requester_template(env: str, peer_env: str, peer_cidr: str, peer_account_id: str) -> Dict[str, Any]:
    parameters = _own_network_parameters()
    parameters.update({
        "LambdaSecurityGroupId": {"Type": "AWS::EC2::SecurityGroup::Id"},
        "PeerVpcId": {
            "Type": "String", "AllowedPattern": "^vpc-[a-f0-9]+$",
            "Description": f"{peer_env}'s VPC (its network stack, read with its deployer role).",
        },
        "PeerRoleArn": {
            "Type": "String",
            "AllowedPattern": f"^arn:aws:iam::{peer_account_id}:role/[\\w+=,.@/-]+$",
            "Description": f"The accepter role in {peer_env}'s account (its peering-downstream stack).",
        },
    })
    resources: Dict[str, Any] = {
        "PeeringConnection": {
            "Type": "AWS::EC2::VPCPeeringConnection",
            "Properties": {
                "VpcId": ref("VpcId"),
                "PeerVpcId": ref("PeerVpcId"),
                "PeerOwnerId": peer_account_id,
                "PeerRoleArn": ref("PeerRoleArn"),
                "PeerRegion": ref("AWS::Region"),
                "Tags": _tags(env, peer_env),
            },
        },
        "LambdaEgressToPeerMysql": {
            "Type": "AWS::EC2::SecurityGroupEgress",
            "Properties": {
                "GroupId": ref("LambdaSecurityGroupId"),
                "Description": f"MySQL to {peer_env}'s Aurora over the peering",
                "IpProtocol": "tcp",
                "FromPort": MYSQL_PORT,
                "ToPort": MYSQL_PORT,
                "CidrIp": peer_cidr,
            },
        },
    }
    resources.update(_paths_to_peer("requester", peer_cidr))
    return document(
        f"envsync peering {env} -> {peer_env} (requester, in {env}'s account): MySQL 3306 to {peer_cidr} only",
        parameters, resources,
        outputs={"PeeringConnectionId": {"Value": ref("PeeringConnection")}, "PeerCidr": {"Value": peer_cidr}},
    )


def accepter_template(env: str, peer_env: str, peer_cidr: str, peer_account_id: str,
                      peer_assumer_role: str = "envsync-cfn-exec") -> Dict[str, Any]:
    parameters = _own_network_parameters()
    parameters.update({
        "DbSecurityGroupId": {"Type": "AWS::EC2::SecurityGroup::Id"},
        "PeeringConnectionId": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^(pcx-[a-f0-9]+)?$",
            "Description": f"{peer_env}'s peering connection once it exists ('' before: no routes yet).",
        },
        "PeerLambdaSecurityGroupId": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^(sg-[a-f0-9]+)?$",
            "Description": f"{peer_env}'s Lambda security group once it exists ('' before: no ingress yet).",
        },
    })
    own_vpc_arn = sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc/${VpcId}")
    resources: Dict[str, Any] = {
        # Assumed by CloudFormation in the downstream account to accept the peering; it can
        # accept nothing but a peering from that account's VPCs into this env's VPC.
        "AccepterRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "PermissionsBoundary": BOUNDARY,
                "RoleName": f"envsync-{env}-peering-accepter-{peer_env}",
                "Description": f"Accepts the VPC peering requested by {peer_env} ({peer_account_id})",
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"AWS": sub(f"arn:${{AWS::Partition}}:iam::{peer_account_id}:root")},
                        "Action": "sts:AssumeRole",
                        # Only the downstream's CloudFormation execution role, which creates the
                        # peering (named by ARN in a condition: it may not exist yet).
                        "Condition": {"ArnEquals": {"aws:PrincipalArn": sub(
                            f"arn:${{AWS::Partition}}:iam::{peer_account_id}:role/{peer_assumer_role}"
                        )}},
                    }],
                },
                "Policies": [{
                    "PolicyName": "accept-peering-from-downstream",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "AcceptFromDownstreamVpcIntoThisVpc",
                                "Effect": "Allow",
                                "Action": "ec2:AcceptVpcPeeringConnection",
                                # The connection id is unknown until the downstream creates it.
                                "Resource": sub(
                                    "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}"
                                    ":vpc-peering-connection/*"
                                ),
                                "Condition": {
                                    "ArnLike": {"ec2:RequesterVpc": sub(
                                        f"arn:${{AWS::Partition}}:ec2:${{AWS::Region}}:{peer_account_id}:vpc/*"
                                    )},
                                    "ArnEquals": {"ec2:AccepterVpc": own_vpc_arn},
                                },
                            },
                            {
                                "Sid": "ThisVpcOnly",
                                "Effect": "Allow",
                                "Action": "ec2:AcceptVpcPeeringConnection",
                                "Resource": own_vpc_arn,
                            },
                        ],
                    },
                }],
            },
        },
        # Only the downstream's sync Lambdas (their security group, referenced across the
        # peering), not its whole VPC. EC2 accepts a reference to a peer VPC's group only over
        # an active peering: added with the return routes, once the downstream's peering
        # stack has output the connection id (that stack completes only once its
        # PeerRoleArn accepted the connection, i.e. when it is active), not as soon as the
        # group exists (the downstream's network stack comes before its peering).
        "DbIngressFromPeerMysql": {
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Condition": "HasActivePeeringAndPeerLambdaSecurityGroup",
            "Properties": {
                "GroupId": ref("DbSecurityGroupId"),
                "Description": f"MySQL from {peer_env}'s sync Lambdas over the peering",
                "IpProtocol": "tcp",
                "FromPort": MYSQL_PORT,
                "ToPort": MYSQL_PORT,
                "SourceSecurityGroupId": ref("PeerLambdaSecurityGroupId"),
                "SourceSecurityGroupOwnerId": peer_account_id,
            },
        },
    }
    resources.update(_paths_to_peer("accepter", peer_cidr))
    return document(
        f"envsync peering {peer_env} -> {env} (accepter, in {env}'s account): "
        f"MySQL 3306 from {peer_env}'s sync Lambdas only",
        parameters, resources,
        outputs={"AccepterRoleArn": {"Value": {"Fn::GetAtt": ["AccepterRole", "Arn"]}},
                 "PeerCidr": {"Value": peer_cidr}},
        conditions={
            "HasPeering": {"Fn::Not": [{"Fn::Equals": [ref("PeeringConnectionId"), ""]}]},
            "HasPeerLambdaSecurityGroup": {"Fn::Not": [{"Fn::Equals": [ref("PeerLambdaSecurityGroupId"), ""]}]},
            "HasActivePeeringAndPeerLambdaSecurityGroup": {
                "Fn::And": [{"Condition": "HasPeering"}, {"Condition": "HasPeerLambdaSecurityGroup"}]},
        },
    )


def build_template(user_data: Dict[str, Any]) -> Dict[str, Any]:
    try:
        side, env = str(user_data["side"]), str(user_data["env"])
        peer_env, peer_cidr = str(user_data["peer_env"]), str(user_data["peer_cidr"])
        peer_account_id = str(user_data["peer_account_id"])
    except (KeyError, TypeError) as err:
        raise ValueError(
            "peering.py: sceptre_user_data needs side, env, peer_env, peer_cidr, peer_account_id "
            f"({err})"
        ) from err
    if side not in SIDES:
        raise ValueError(f"peering.py ({env}): side '{side}' must be one of {', '.join(SIDES)}")
    if {env, peer_env} == {"dev", "prod"}:
        raise ValueError(f"peering.py: {env} and {peer_env} are never peered (prod<->dev)")
    try:
        ipaddress.ip_network(peer_cidr, strict=True)
    except ValueError as err:
        raise ValueError(f"peering.py ({env}): peer_cidr '{peer_cidr}' is invalid: {err}") from err
    if side == "accepter" and bool(user_data.get("is_prod")):
        raise ValueError(f"peering.py ({env}): a prod env is never a source, so never an accepter")
    if side == "requester":
        return requester_template(env, peer_env, peer_cidr, peer_account_id)
    return accepter_template(env, peer_env, peer_cidr, peer_account_id,
                             str(user_data.get("peer_assumer_role", "envsync-cfn-exec")))


def sceptre_handler(sceptre_user_data: Dict[str, Any]) -> str:
    return json.dumps(build_template(sceptre_user_data), indent=2)
