"""EC2 traffic-filtering models moto 5.2.5 lacks: network ACLs, their entries and subnet
associations, standalone security-group egress rules, and the `SecurityGroupEgress` property
of a security group (moto keeps the default allow-all egress rule and ignores the property).

Each delegates to moto's EC2 backend calls (the ones the EC2 API uses), so
`describe_network_acls` / `describe_security_groups` show what the stack created.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, Dict, List, Optional

from moto.core.common_models import CloudFormationModel
from moto.ec2.exceptions import InvalidNetworkAclIdError
from moto.ec2.models import EC2Backend, ec2_backends
from moto.ec2.models.security_groups import SecurityGroup

from envsync_local.cfn_models.ec2 import RevocableSecurityGroupIngress
from envsync_local.cfn_models.stack_engine import ResourceFailed


def _backend(account_id: str, region_name: str) -> EC2Backend:
    return ec2_backends[account_id][region_name]


def _tags(properties: Dict[str, Any]) -> List[Dict[str, str]]:
    return [{"Key": tag["Key"], "Value": tag["Value"]} for tag in properties.get("Tags", [])]


class NetworkAcl(CloudFormationModel):
    """AWS::EC2::NetworkAcl."""

    def __init__(self, acl_id: str):
        self.id = acl_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EC2::NetworkAcl"

    @property
    def physical_resource_id(self) -> str:
        return self.id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Id":
            return self.id
        raise NotImplementedError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> NetworkAcl:
        properties = cloudformation_json["Properties"]
        acl = _backend(account_id, region_name).create_network_acl(properties["VpcId"], tags=_tags(properties))
        return cls(acl.id)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        _backend(account_id, region_name).delete_network_acl(resource_name)


class NetworkAclEntry(CloudFormationModel):
    """AWS::EC2::NetworkAclEntry."""

    def __init__(self, acl_id: str, rule_number: int, egress: bool):
        self.acl_id = acl_id
        self.rule_number = rule_number
        self.egress = egress

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EC2::NetworkAclEntry"

    @property
    def physical_resource_id(self) -> str:
        return f"{self.acl_id}|{self.rule_number}|{'egress' if self.egress else 'ingress'}"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> NetworkAclEntry:
        properties = cloudformation_json["Properties"]
        port_range = properties.get("PortRange") or {}
        icmp = properties.get("Icmp") or {}
        egress = str(properties.get("Egress", False)).lower() == "true"
        try:
            _backend(account_id, region_name).create_network_acl_entry(
                network_acl_id=properties["NetworkAclId"],
                rule_number=int(properties["RuleNumber"]),
                protocol=str(properties["Protocol"]),
                rule_action=properties["RuleAction"],
                egress=egress,
                cidr_block=properties.get("CidrBlock"),
                icmp_code=icmp.get("Code"),
                icmp_type=icmp.get("Type"),
                port_range_from=port_range.get("From"),
                port_range_to=port_range.get("To"),
                ipv6_cidr_block=properties.get("Ipv6CidrBlock"),
            )
        except Exception as error:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(), str(error)) from None
        return cls(properties["NetworkAclId"], int(properties["RuleNumber"]), egress)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        acl_id, rule_number, direction = resource_name.split("|")
        # The ACL may already be gone, and its entries with it.
        with suppress(InvalidNetworkAclIdError, StopIteration):
            _backend(account_id, region_name).delete_network_acl_entry(acl_id, int(rule_number),
                                                                      direction == "egress")


class SubnetNetworkAclAssociation(CloudFormationModel):
    """AWS::EC2::SubnetNetworkAclAssociation (moves the subnet off its VPC's default ACL)."""

    def __init__(self, association_id: str):
        self.association_id = association_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EC2::SubnetNetworkAclAssociation"

    @property
    def physical_resource_id(self) -> str:
        return self.association_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "AssociationId"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "AssociationId":
            return self.association_id
        raise NotImplementedError(attribute_name)

    @staticmethod
    def _current_association(backend: EC2Backend, subnet_id: str) -> Optional[str]:
        for acl in backend.network_acls.values():
            for association_id, association in acl._associations.items():
                if association.subnet_id == subnet_id:
                    return association_id
        return None

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> SubnetNetworkAclAssociation:
        properties = cloudformation_json["Properties"]
        backend = _backend(account_id, region_name)
        current = cls._current_association(backend, properties["SubnetId"])
        if current is None:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(),
                                 f"subnet {properties['SubnetId']} has no network ACL association")
        association = backend.replace_network_acl_association(current, properties["NetworkAclId"])
        return cls(association.new_association_id)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        """Give the subnet back to its VPC's default ACL, as EC2 does."""
        backend = _backend(account_id, region_name)
        for acl in list(backend.network_acls.values()):
            association = acl._associations.get(resource_name)
            if association is None:
                continue
            default = next((other for other in backend.network_acls.values()
                            if other.default and other.vpc_id == acl.vpc_id), None)
            if default is None:
                del acl._associations[resource_name]
            else:
                backend.replace_network_acl_association(resource_name, default.id)
            return


def _egress_arguments(rule: Dict[str, Any]) -> Dict[str, Any]:
    arguments: Dict[str, Any] = {
        "ip_protocol": str(rule.get("IpProtocol")),
        "from_port": rule.get("FromPort"),
        "to_port": rule.get("ToPort"),
        "ip_ranges": [],
        "source_groups": [],
        "prefix_list_ids": [],
    }
    if rule.get("CidrIp"):
        arguments["ip_ranges"] = [{"CidrIp": rule["CidrIp"], "Description": rule.get("Description", "")}]
    if rule.get("DestinationSecurityGroupId"):
        arguments["source_groups"] = [{"GroupId": rule["DestinationSecurityGroupId"]}]
    if rule.get("DestinationPrefixListId"):
        arguments["prefix_list_ids"] = [{"PrefixListId": rule["DestinationPrefixListId"],
                                         "Description": rule.get("Description", "")}]
    return arguments


class SecurityGroupEgress(RevocableSecurityGroupIngress, CloudFormationModel):
    """AWS::EC2::SecurityGroupEgress: the ingress model (ec2.py) in the other direction."""

    authorize = "authorize_security_group_egress"
    revoke = "revoke_security_group_egress"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EC2::SecurityGroupEgress"

    @staticmethod
    def rule_arguments(properties: Dict[str, Any]) -> Dict[str, Any]:
        return _egress_arguments(properties)


class SecurityGroupWithEgress(CloudFormationModel):
    """AWS::EC2::SecurityGroup: moto's model, plus the `SecurityGroupEgress` property.

    As in EC2, declaring egress rules replaces the default allow-all egress rule.
    """

    @staticmethod
    def cloudformation_name_type() -> str:
        return SecurityGroup.cloudformation_name_type()

    @staticmethod
    def cloudformation_type() -> str:
        return SecurityGroup.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return SecurityGroup.has_cfn_attr(attr)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> SecurityGroup:
        group = SecurityGroup.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs)
        egress = cloudformation_json["Properties"].get("SecurityGroupEgress")
        if egress:
            backend = _backend(account_id, region_name)
            for rule in list(group.egress_rules):
                if rule.ip_protocol == "-1" and rule.ip_range.get("CidrIp") == "0.0.0.0/0":
                    group.egress_rules.remove(rule)
            for rule in egress:
                backend.authorize_security_group_egress(group.id, **_egress_arguments(rule))
        return group

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: SecurityGroup, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> SecurityGroup:
        return SecurityGroup.update_from_cloudformation_json(
            original_resource, new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        SecurityGroup.delete_from_cloudformation_json(resource_name, cloudformation_json, account_id,
                                                      region_name)
