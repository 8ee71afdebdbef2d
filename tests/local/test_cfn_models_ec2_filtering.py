"""NACLs, their entries and associations, and security-group egress, created through a stack."""

from __future__ import annotations

import json

import boto3

TEMPLATE = {
    "Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.77.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.77.0.0/20"}},
        "Acl": {"Type": "AWS::EC2::NetworkAcl", "Properties": {"VpcId": {"Ref": "Vpc"},
                                                                "Tags": [{"Key": "Name", "Value": "private"}]}},
        "AllowMysqlIn": {"Type": "AWS::EC2::NetworkAclEntry", "Properties": {
            "NetworkAclId": {"Ref": "Acl"}, "RuleNumber": 100, "Protocol": 6, "RuleAction": "allow",
            "Egress": False, "CidrBlock": "10.78.0.0/16", "PortRange": {"From": 3306, "To": 3306}}},
        "DenyPeer": {"Type": "AWS::EC2::NetworkAclEntry", "Properties": {
            "NetworkAclId": {"Ref": "Acl"}, "RuleNumber": 190, "Protocol": -1, "RuleAction": "deny",
            "Egress": True, "CidrBlock": "10.78.0.0/16"}},
        "SubnetAcl": {"Type": "AWS::EC2::SubnetNetworkAclAssociation",
                      "Properties": {"SubnetId": {"Ref": "Subnet"}, "NetworkAclId": {"Ref": "Acl"}}},
        "Db": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": "db", "VpcId": {"Ref": "Vpc"},
            "SecurityGroupEgress": [{"IpProtocol": "icmp", "FromPort": 252, "ToPort": 86,
                                     "CidrIp": "127.0.0.1/32"}]}},
        "App": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "app", "VpcId": {"Ref": "Vpc"}}},
        "AppToDb": {"Type": "AWS::EC2::SecurityGroupEgress", "Properties": {
            "GroupId": {"Fn::GetAtt": ["App", "GroupId"]}, "IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306,
            "DestinationSecurityGroupId": {"Fn::GetAtt": ["Db", "GroupId"]}}},
    },
    "Outputs": {"AclId": {"Value": {"Ref": "Acl"}}, "VpcId": {"Value": {"Ref": "Vpc"}},
                "DbGroup": {"Value": {"Fn::GetAtt": ["Db", "GroupId"]}},
                "AppGroup": {"Value": {"Fn::GetAtt": ["App", "GroupId"]}}},
}


def test_acls_and_egress_rules_are_created_readable_and_deleted(aws_env):
    cloudformation, ec2 = boto3.client("cloudformation"), boto3.client("ec2")
    cloudformation.create_stack(StackName="filtering", TemplateBody=json.dumps(TEMPLATE))
    stack = cloudformation.describe_stacks(StackName="filtering")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

    (acl,) = ec2.describe_network_acls(NetworkAclIds=[outputs["AclId"]])["NetworkAcls"]
    assert acl["Tags"] == [{"Key": "Name", "Value": "private"}]
    rules = {(e["RuleNumber"], e["Egress"], e["RuleAction"]) for e in acl["Entries"]}
    assert {(100, False, "allow"), (190, True, "deny")} <= rules
    mysql = next(e for e in acl["Entries"] if e["RuleNumber"] == 100)
    assert mysql["PortRange"] == {"From": 3306, "To": 3306} and mysql["CidrBlock"] == "10.78.0.0/16"
    assert len(acl["Associations"]) == 1

    groups = {g["GroupId"]: g for g in ec2.describe_security_groups(
        GroupIds=[outputs["DbGroup"], outputs["AppGroup"]])["SecurityGroups"]}
    db_egress = groups[outputs["DbGroup"]]["IpPermissionsEgress"]
    assert [r["IpRanges"][0]["CidrIp"] for r in db_egress] == ["127.0.0.1/32"]
    app_egress = groups[outputs["AppGroup"]]["IpPermissionsEgress"]
    assert any(r.get("FromPort") == 3306 and r["UserIdGroupPairs"][0]["GroupId"] == outputs["DbGroup"]
               for r in app_egress)

    cloudformation.delete_stack(StackName="filtering")
    remaining = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [outputs["VpcId"]]}])["NetworkAcls"]
    assert [acl["NetworkAclId"] for acl in remaining if not acl["IsDefault"]] == []
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [outputs["VpcId"]]}])["Vpcs"] == []


def test_egress_added_to_another_stacks_group_is_revoked_with_its_stack(aws_env):
    cloudformation, ec2 = boto3.client("cloudformation"), boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.79.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="shared", Description="shared", VpcId=vpc)["GroupId"]
    rule = {"Type": "AWS::EC2::SecurityGroupEgress", "Properties": {
        "GroupId": {"Ref": "Group"}, "IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "CidrIp": "10.80.0.0/16"}}
    template = {"Parameters": {"Group": {"Type": "String"}}, "Resources": {"PeerMysql": rule}}
    cloudformation.create_stack(StackName="egress-rule", TemplateBody=json.dumps(template),
                                Parameters=[{"ParameterKey": "Group", "ParameterValue": group}])

    def mysql_egress():
        (described,) = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
        return [r for r in described["IpPermissionsEgress"] if r.get("FromPort") == 3306]

    assert [r["IpRanges"][0]["CidrIp"] for r in mysql_egress()] == ["10.80.0.0/16"]
    cloudformation.delete_stack(StackName="egress-rule")
    assert mysql_egress() == []
