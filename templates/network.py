"""envsync network: a private-only VPC per env (Sceptre Python template).

Two private subnets in two AZs, each with its own route table and no path to the internet
(no IGW, no NAT, no 0.0.0.0/0 route). The AWS APIs the sync Lambdas call are reached through
VPC endpoints; MySQL is the only port open to the databases. Peering routes and the peer
NACL entries are added by the peering stacks, in the rule-number band reserved below.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Dict, List

from template_common import (
    AZ_COUNT,
    BOUNDARY,
    EPHEMERAL_PORTS,
    HTTPS_PORT,
    MYSQL_PORT,
    NETWORK_NACL_RULE_BASE,
    document,
    nacl_entry,
    ref,
    sub,
)

INTERFACE_ENDPOINTS = ("ssm", "secretsmanager", "kms", "sts", "logs", "monitoring", "sns", "states")


def _tags(env: str, name: str) -> List[Dict[str, str]]:
    return [{"Key": "Name", "Value": f"envsync-{env}-{name}"}, {"Key": "Env", "Value": env}]


def subnet_cidrs(vpc_cidr: str, count: int = AZ_COUNT) -> List[str]:
    """The first `count` quarter-blocks of the VPC (a /16 gives /18s)."""
    network = ipaddress.ip_network(vpc_cidr, strict=True)
    return [str(block) for block in list(network.subnets(prefixlen_diff=2))[:count]]


def _nacl_entries(vpc_cidr: str) -> Dict[str, Any]:
    """Stateless rules for the private subnets: in-VPC MySQL/HTTPS, S3 gateway HTTPS out."""
    rules = [
        # (egress, cidr, from, to, why)
        (False, vpc_cidr, MYSQL_PORT, MYSQL_PORT, "Mysql"),
        (False, vpc_cidr, HTTPS_PORT, HTTPS_PORT, "Https"),
        (False, vpc_cidr, *EPHEMERAL_PORTS, "VpcReturn"),
        # Replies from the S3 gateway endpoint come from S3's public ranges.
        (False, "0.0.0.0/0", *EPHEMERAL_PORTS, "S3Return"),
        (True, vpc_cidr, MYSQL_PORT, MYSQL_PORT, "Mysql"),
        (True, vpc_cidr, HTTPS_PORT, HTTPS_PORT, "Https"),
        (True, vpc_cidr, *EPHEMERAL_PORTS, "VpcReturn"),
        # The S3 gateway endpoint is addressed by S3's public ranges (no internet route exists).
        (True, "0.0.0.0/0", HTTPS_PORT, HTTPS_PORT, "S3Https"),
    ]
    resources: Dict[str, Any] = {}
    for index, (egress, cidr, port_from, port_to, why) in enumerate(rules):
        direction = "Out" if egress else "In"
        resources[f"PrivateNacl{direction}{why}"] = nacl_entry(
            ref("PrivateNetworkAcl"), egress, NETWORK_NACL_RULE_BASE + index * 10, cidr, "allow", 6,
            (port_from, port_to))
    return resources


def _subnets(env: str, vpc_cidr: str) -> Dict[str, Any]:
    resources: Dict[str, Any] = {}
    for index, cidr in enumerate(subnet_cidrs(vpc_cidr)):
        number = index + 1
        resources[f"PrivateSubnet{number}"] = {
            "Type": "AWS::EC2::Subnet",
            "Properties": {
                "VpcId": ref("Vpc"),
                "CidrBlock": cidr,
                "AvailabilityZone": {"Fn::Select": [index, {"Fn::GetAZs": ""}]},
                "MapPublicIpOnLaunch": False,
                "Tags": _tags(env, f"private-{number}"),
            },
        }
        resources[f"PrivateRouteTable{number}"] = {
            "Type": "AWS::EC2::RouteTable",
            "Properties": {"VpcId": ref("Vpc"), "Tags": _tags(env, f"private-{number}")},
        }
        resources[f"PrivateSubnet{number}RouteTable"] = {
            "Type": "AWS::EC2::SubnetRouteTableAssociation",
            "Properties": {
                "SubnetId": ref(f"PrivateSubnet{number}"),
                "RouteTableId": ref(f"PrivateRouteTable{number}"),
            },
        }
        resources[f"PrivateSubnet{number}NetworkAcl"] = {
            "Type": "AWS::EC2::SubnetNetworkAclAssociation",
            "Properties": {
                "SubnetId": ref(f"PrivateSubnet{number}"),
                "NetworkAclId": ref("PrivateNetworkAcl"),
            },
        }
    return resources


# An egress rule that matches nothing: CloudFormation otherwise adds "all traffic out".
NO_EGRESS = [{
    "IpProtocol": "icmp", "FromPort": 252, "ToPort": 86, "CidrIp": "127.0.0.1/32",
    "Description": "no egress",
}]


def _security_groups(env: str, vpc_cidr: str) -> Dict[str, Any]:
    return {
        "DbSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": f"envsync {env} Aurora: MySQL from the sync Lambdas only",
                "VpcId": ref("Vpc"),
                "SecurityGroupEgress": NO_EGRESS,
                "Tags": _tags(env, "db"),
            },
        },
        "DbIngressFromLambda": {
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Properties": {
                "GroupId": ref("DbSecurityGroup"),
                "Description": "MySQL from the sync Lambdas",
                "IpProtocol": "tcp",
                "FromPort": MYSQL_PORT,
                "ToPort": MYSQL_PORT,
                "SourceSecurityGroupId": ref("LambdaSecurityGroup"),
            },
        },
        "LambdaSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": f"envsync {env} sync Lambdas: MySQL out, HTTPS to endpoints",
                "VpcId": ref("Vpc"),
                "SecurityGroupEgress": [
                    {
                        "IpProtocol": "tcp", "FromPort": HTTPS_PORT, "ToPort": HTTPS_PORT,
                        "CidrIp": vpc_cidr, "Description": "interface endpoints",
                    },
                ],
                "Tags": _tags(env, "lambda"),
            },
        },
        "LambdaEgressToDb": {
            "Type": "AWS::EC2::SecurityGroupEgress",
            "Properties": {
                "GroupId": ref("LambdaSecurityGroup"),
                "Description": "MySQL to this env's Aurora",
                "IpProtocol": "tcp",
                "FromPort": MYSQL_PORT,
                "ToPort": MYSQL_PORT,
                "DestinationSecurityGroupId": ref("DbSecurityGroup"),
            },
        },
        "LambdaEgressToS3": {
            "Type": "AWS::EC2::SecurityGroupEgress",
            "Properties": {
                "GroupId": ref("LambdaSecurityGroup"),
                "Description": "HTTPS to S3 through the gateway endpoint",
                "IpProtocol": "tcp",
                "FromPort": HTTPS_PORT,
                "ToPort": HTTPS_PORT,
                "DestinationPrefixListId": ref("S3PrefixListId"),
            },
        },
        "EndpointSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": f"envsync {env} interface endpoints: HTTPS from the VPC",
                "VpcId": ref("Vpc"),
                "SecurityGroupIngress": [{
                    "IpProtocol": "tcp", "FromPort": HTTPS_PORT, "ToPort": HTTPS_PORT,
                    "CidrIp": vpc_cidr, "Description": "HTTPS from this VPC",
                }],
                "SecurityGroupEgress": NO_EGRESS,
                "Tags": _tags(env, "endpoints"),
            },
        },
    }


# Without a policy an endpoint lets any principal reach any account's resources through it.
INTERFACE_ENDPOINT_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "ChainAccountsOnly",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "*",
        "Resource": "*",
        # This env's roles, and the upstream's source-reader role the sync assumes; on this
        # env's or the upstream's resources only (a name such as a bucket's can be anyone's).
        # Calls on no resource (PutMetricData, GetRandomPassword) have no resource account.
        "Condition": {"StringEquals": {"aws:PrincipalAccount": ref("TrustedAccountIds")},
                      "StringEqualsIfExists": {"aws:ResourceAccount": ref("TrustedAccountIds")}},
    }],
}


def _s3_endpoint_policy(env: str) -> Dict[str, Any]:
    """The buckets the code in this VPC uses: the env's own, and CloudFormation's response path
    (a custom resource's function PUTs its result to a pre-signed URL there)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EnvsyncBuckets",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:PutObject"],
                "Resource": [f"arn:aws:s3:::envsync-{env}-*", f"arn:aws:s3:::envsync-{env}-*/*"],
                # Bucket names are global: envsync-<env>-* in another account is not ours.
                "Condition": {"StringEquals": {"aws:PrincipalAccount": ref("TrustedAccountIds"),
                                               "aws:ResourceAccount": ref("AWS::AccountId")}},
            },
            {
                "Sid": "CloudFormationResponses",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": sub("arn:${AWS::Partition}:s3:::cloudformation-custom-resource-response-*/*"),
            },
        ],
    }


def _endpoints(env: str) -> Dict[str, Any]:
    resources: Dict[str, Any] = {}
    for service in INTERFACE_ENDPOINTS:
        logical = "".join(part.capitalize() for part in service.split("-"))
        resources[f"{logical}Endpoint"] = {
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "VpcId": ref("Vpc"),
                "ServiceName": sub(f"com.amazonaws.${{AWS::Region}}.{service}"),
                "VpcEndpointType": "Interface",
                "PrivateDnsEnabled": True,
                "SubnetIds": [ref(f"PrivateSubnet{n + 1}") for n in range(AZ_COUNT)],
                "SecurityGroupIds": [ref("EndpointSecurityGroup")],
                "PolicyDocument": INTERFACE_ENDPOINT_POLICY,
            },
        }
    resources["S3Endpoint"] = {
        "Type": "AWS::EC2::VPCEndpoint",
        "Properties": {
            "VpcId": ref("Vpc"),
            "ServiceName": sub("com.amazonaws.${AWS::Region}.s3"),
            "VpcEndpointType": "Gateway",
            "RouteTableIds": [ref(f"PrivateRouteTable{n + 1}") for n in range(AZ_COUNT)],
            "PolicyDocument": _s3_endpoint_policy(env),
        },
    }
    return resources


def _flow_logs(env: str, retain: bool) -> Dict[str, Any]:
    # Prod keeps its flow logs when the stack goes, but not after a failed first create: the
    # name is fixed, so a retry would stop at "already exists".
    return {
        "FlowLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "RetainExceptOnCreate" if retain else "Delete",
            "UpdateReplacePolicy": "Retain" if retain else "Delete",
            "Properties": {
                "LogGroupName": f"/envsync/{env}/vpc-flow-logs",
                "RetentionInDays": ref("FlowLogRetentionDays"),
                "KmsKeyId": ref("KmsKeyArn"),
            },
        },
        "FlowLogRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "PermissionsBoundary": BOUNDARY,
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
                    }],
                },
                "Policies": [{
                    "PolicyName": "write-flow-logs",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [
                                {"Fn::GetAtt": ["FlowLogGroup", "Arn"]},
                                sub("${FlowLogGroup.Arn}:log-stream:*"),
                            ],
                        }],
                    },
                }],
            },
        },
        "VpcFlowLog": {
            "Type": "AWS::EC2::FlowLog",
            "Properties": {
                "ResourceId": ref("Vpc"),
                "ResourceType": "VPC",
                "TrafficType": "ALL",
                "LogDestinationType": "cloud-watch-logs",
                "LogGroupName": ref("FlowLogGroup"),
                "DeliverLogsPermissionArn": {"Fn::GetAtt": ["FlowLogRole", "Arn"]},
                "Tags": _tags(env, "flow-log"),
            },
        },
    }


def _outputs() -> Dict[str, Any]:
    subnets = [ref(f"PrivateSubnet{n + 1}") for n in range(AZ_COUNT)]
    route_tables = [ref(f"PrivateRouteTable{n + 1}") for n in range(AZ_COUNT)]
    values: Dict[str, Any] = {
        "VpcId": ref("Vpc"),
        "VpcCidr": {"Fn::GetAtt": ["Vpc", "CidrBlock"]},
        "PrivateSubnetIds": {"Fn::Join": [",", subnets]},
        "PrivateRouteTableIds": {"Fn::Join": [",", route_tables]},
        "PrivateNetworkAclId": ref("PrivateNetworkAcl"),
        "DbSecurityGroupId": {"Fn::GetAtt": ["DbSecurityGroup", "GroupId"]},
        "LambdaSecurityGroupId": {"Fn::GetAtt": ["LambdaSecurityGroup", "GroupId"]},
        "EndpointSecurityGroupId": {"Fn::GetAtt": ["EndpointSecurityGroup", "GroupId"]},
    }
    for n in range(AZ_COUNT):
        values[f"PrivateSubnet{n + 1}Id"] = subnets[n]
        values[f"PrivateRouteTable{n + 1}Id"] = route_tables[n]
    return {name: {"Value": value} for name, value in values.items()}


def build_template(env: str, vpc_cidr: str, retain: bool = False) -> Dict[str, Any]:
    """The network stack for one env, as a CloudFormation template dict."""
    ipaddress.ip_network(vpc_cidr, strict=True)  # a malformed CIDR fails here, at generate
    resources: Dict[str, Any] = {
        "Vpc": {
            "Type": "AWS::EC2::VPC",
            "Properties": {
                "CidrBlock": vpc_cidr,
                # Interface endpoints with private DNS need both.
                "EnableDnsSupport": True,
                "EnableDnsHostnames": True,
                "Tags": _tags(env, "vpc"),
            },
        },
        "PrivateNetworkAcl": {
            "Type": "AWS::EC2::NetworkAcl",
            "Properties": {"VpcId": ref("Vpc"), "Tags": _tags(env, "private")},
        },
    }
    resources.update(_subnets(env, vpc_cidr))
    resources.update(_nacl_entries(vpc_cidr))
    resources.update(_security_groups(env, vpc_cidr))
    resources.update(_endpoints(env))
    resources.update(_flow_logs(env, retain))
    return document(
        f"envsync network for {env}: private VPC {vpc_cidr}, 2 AZs, endpoints",
        {
            "KmsKeyArn": {
                "Type": "String",
                "AllowedPattern": "^arn:aws:kms:[a-z0-9-]+:\\d{12}:key/[a-f0-9-]+$",
                "Description": "The env's CMK (kms stack), encrypts the flow-log group.",
            },
            "FlowLogRetentionDays": {
                "Type": "Number",
                "Default": 365,
                "AllowedValues": [90, 180, 365, 400, 545, 731, 1827, 3653],
            },
            "TrustedAccountIds": {
                "Type": "CommaDelimitedList",
                "Description": "Accounts whose principals may use this VPC's endpoints: this env's and its upstream's.",
            },
            "S3PrefixListId": {
                "Type": "String",
                "AllowedPattern": "^pl-[a-f0-9]+$",
                "Description": "The region's S3 prefix list (com.amazonaws.<region>.s3).",
            },
        },
        resources,
        _outputs(),
    )


def sceptre_handler(sceptre_user_data: Dict[str, Any]) -> str:
    try:
        env, vpc_cidr = sceptre_user_data["env"], sceptre_user_data["vpc_cidr"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"network.py: sceptre_user_data needs env and vpc_cidr ({err})") from err
    try:
        template = build_template(str(env), str(vpc_cidr), bool(sceptre_user_data.get("retain", False)))
    except ValueError as err:
        raise ValueError(f"network.py ({env}): vpc_cidr '{vpc_cidr}' is invalid: {err}") from err
    return json.dumps(template, indent=2)
