"""EC2 routing models moto 5.2.5 cannot delete (or, for peering, create across accounts).

moto's RouteTable, Route, SubnetRouteTableAssociation, VPCEndpoint and VPCPeeringConnection
models have no delete, so a stack delete leaves them behind and the VPC delete then fails.
moto's SubnetRouteTableAssociation also never associates the table with the subnet, and its
VPCPeeringConnection ignores `PeerOwnerId`/`PeerRegion`/`PeerRoleArn` (the peer VPC is looked
up in the requester's own account). Each model here lets moto's model create the resource
where moto gets that right, and uses moto's EC2 backend calls (the same as the API's) for the
rest.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator

from moto.core.common_models import CloudFormationModel
from moto.ec2.models import EC2Backend, ec2_backends
from moto.ec2.models.route_tables import Route, RouteTable
from moto.ec2.models.vpc_peering_connections import VPCPeeringConnection
from moto.ec2.models.vpcs import VPCEndPoint

from envsync_local.cfn_models.iam import policy_json
from envsync_local.cfn_models.stack_engine import ResourceFailed


def _backend(account_id: str, region_name: str) -> EC2Backend:
    return ec2_backends[account_id][region_name]


class DeletableRouteTable(CloudFormationModel):
    """AWS::EC2::RouteTable (moto's, plus delete)."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return RouteTable.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "RouteTableId"

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> RouteTable:
        return RouteTable.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: RouteTable, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> RouteTable:
        if cloudformation_json["Properties"]["VpcId"] == original_resource.vpc_id:
            return original_resource  # only Tags can change, and the stack re-tags
        replacement = cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name)
        cls.delete_from_cloudformation_json(original_resource.id, cloudformation_json,
                                            account_id, region_name)
        return replacement

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        backend = _backend(account_id, region_name)
        if resource_name in backend.route_tables:
            backend.delete_route_table(resource_name)


class DeletableRoute(CloudFormationModel):
    """AWS::EC2::Route (moto's, plus update and delete)."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return Route.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> Route:
        return Route.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Route, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> Route:
        cls._delete_route(original_resource, account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name)

    @staticmethod
    def _delete_route(route: Route, account_id: str, region_name: str) -> None:
        backend = _backend(account_id, region_name)
        if route.route_table.id in backend.route_tables and route.id in route.route_table._routes:
            backend.delete_route(route.route_table.id, route.destination_cidr_block,
                                 route.destination_ipv6_cidr_block)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        # resource_name is the route's id; the template's RouteTableId may be an unresolved Ref.
        backend = _backend(account_id, region_name)
        for table in list(backend.route_tables.values()):
            for route in list(table.routes):
                if route.id == resource_name:
                    cls._delete_route(route, account_id, region_name)


class SubnetRouteTableAssociation(CloudFormationModel):
    """AWS::EC2::SubnetRouteTableAssociation: a real AssociateRouteTable, and its undo."""

    def __init__(self, association_id: str, route_table_id: str, subnet_id: str):
        self.association_id = association_id
        self.route_table_id = route_table_id
        self.subnet_id = subnet_id

    @property
    def physical_resource_id(self) -> str:
        return self.association_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ec2-subnetroutetableassociation.html
        return "AWS::EC2::SubnetRouteTableAssociation"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Id":
            return self.association_id
        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> SubnetRouteTableAssociation:
        properties = cloudformation_json["Properties"]
        backend = _backend(account_id, region_name)
        association_id = backend.associate_route_table(
            properties["RouteTableId"], subnet_id=properties["SubnetId"])
        return cls(association_id, properties["RouteTableId"], properties["SubnetId"])

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: SubnetRouteTableAssociation, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> SubnetRouteTableAssociation:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _backend(account_id, region_name)
        table = backend.route_tables.get(self.route_table_id)
        if table is not None and self.association_id in table._associations:
            backend.disassociate_route_table(self.association_id)


class DeletableVPCEndpoint(CloudFormationModel):
    """AWS::EC2::VPCEndpoint (moto's, plus delete and the policy as JSON)."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return VPCEndPoint.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return VPCEndPoint.has_cfn_attr(attr)

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> VPCEndPoint:
        # CloudFormation's default type; moto keeps None and then cannot delete the endpoint.
        properties = {"VpcEndpointType": "Gateway", **cloudformation_json["Properties"]}
        # The API returns PolicyDocument as JSON text; moto would keep the template's dict.
        if isinstance(properties.get("PolicyDocument"), dict):
            properties["PolicyDocument"] = policy_json(properties["PolicyDocument"])
        return VPCEndPoint.create_from_cloudformation_json(
            resource_name, {**cloudformation_json, "Properties": properties}, account_id,
            region_name, **kwargs)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: VPCEndPoint, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> VPCEndPoint:
        cls.delete_from_cloudformation_json(original_resource.id, cloudformation_json,
                                            account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        backend = _backend(account_id, region_name)
        if resource_name in backend.vpc_end_points:
            backend.delete_vpc_endpoints([resource_name])
            backend.vpc_end_points.pop(resource_name, None)


class CrossAccountPeeringConnection(CloudFormationModel):
    """AWS::EC2::VPCPeeringConnection, same- or cross-account, with delete.

    With `PeerOwnerId` (and `PeerRoleArn`, the accepter's role CloudFormation assumes) the
    peer VPC is found in that account, and the connection is accepted there, as
    CloudFormation does; without a role the connection stays pending-acceptance.
    """

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return VPCPeeringConnection.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> VPCPeeringConnection:
        properties = cloudformation_json["Properties"]
        backend = _backend(account_id, region_name)
        peer_account = str(properties.get("PeerOwnerId") or account_id)
        peer_region = properties.get("PeerRegion") or region_name
        peer_backend = _backend(peer_account, peer_region)
        try:
            vpc = backend.get_vpc(properties["VpcId"])
            peer_vpc = peer_backend.get_vpc(properties["PeerVpcId"])
        except Exception as error:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(),
                                 f"{getattr(error, 'message', error)} (peer account {peer_account}, "
                                 f"region {peer_region})") from None
        tags = {tag["Key"]: tag["Value"] for tag in properties.get("Tags") or []}
        connection = backend.create_vpc_peering_connection(vpc, peer_vpc, tags=tags)
        if peer_account == account_id and peer_region == region_name:
            peer_backend.accept_vpc_peering_connection(connection.id)
        elif properties.get("PeerRoleArn"):
            role_account = str(properties["PeerRoleArn"]).split(":")[4]
            if role_account != peer_account:
                raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(),
                                     f"PeerRoleArn {properties['PeerRoleArn']} is not in the "
                                     f"peer account {peer_account}")
            peer_backend.accept_vpc_peering_connection(connection.id)
        return connection

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: VPCPeeringConnection, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> VPCPeeringConnection:
        properties = cloudformation_json["Properties"]
        if (properties["VpcId"] == original_resource.vpc.id
                and properties["PeerVpcId"] == original_resource.peer_vpc.id):
            return original_resource  # only Tags can change
        cls.delete_from_cloudformation_json(original_resource.id, cloudformation_json,
                                            account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        backend = _backend(account_id, region_name)
        if resource_name in backend.vpc_pcxs:
            backend.delete_vpc_peering_connection(resource_name)


def _ingress_arguments(properties: Dict[str, Any]) -> Dict[str, Any]:
    """AWS::EC2::SecurityGroupIngress properties -> moto's AuthorizeSecurityGroupIngress arguments."""
    source: Dict[str, str] = {}
    if properties.get("SourceSecurityGroupId"):
        source["GroupId"] = properties["SourceSecurityGroupId"]
    if properties.get("SourceSecurityGroupName"):
        source["GroupName"] = properties["SourceSecurityGroupName"]
    if properties.get("SourceSecurityGroupOwnerId"):
        source["UserId"] = str(properties["SourceSecurityGroupOwnerId"])
    ip_ranges = [{"CidrIp": properties["CidrIp"], "Description": properties.get("Description", "")}] \
        if properties.get("CidrIp") else []
    prefix_lists = [{"PrefixListId": properties["SourcePrefixListId"],
                     "Description": properties.get("Description", "")}] \
        if properties.get("SourcePrefixListId") else []
    return {"ip_protocol": str(properties["IpProtocol"]), "from_port": properties.get("FromPort"),
            "to_port": properties.get("ToPort"), "ip_ranges": ip_ranges,
            "source_groups": [source] if source else [], "prefix_list_ids": prefix_lists}


@contextlib.contextmanager
def _peer_groups_visible(backend: EC2Backend, arguments: Dict[str, Any], region_name: str) -> Iterator[None]:
    """Let a rule name another account's security group (AWS allows it across a peering).

    moto resolves a rule's source group only in the rule's own account (its
    `_add_source_group`); the upstream change would resolve `UserId` against that account's
    backend. Until then the group is checked in its owner's account here, as AWS checks it, and
    moto's own-account lookup is answered with it for the duration of the call.
    """
    peers = {item["GroupId"]: str(item["UserId"]) for item in arguments.get("source_groups", [])
             if item.get("GroupId") and item.get("UserId") and item["UserId"] != backend.account_id}
    if not peers:
        yield
        return
    for group_id, owner in peers.items():
        if not _backend(owner, region_name).get_security_group_by_name_or_id(group_id, None):
            raise ResourceFailed(None, "AWS::EC2::SecurityGroupIngress",
                                 f"The security group '{group_id}' does not exist in account {owner}")
    own_lookup = backend.get_security_group_by_name_or_id

    def lookup(name_or_id: str, vpc_id: Any = None) -> Any:
        if name_or_id in peers:
            return _backend(peers[name_or_id], region_name).get_security_group_by_name_or_id(name_or_id, None)
        return own_lookup(name_or_id, vpc_id)

    backend.get_security_group_by_name_or_id = lookup  # type: ignore[method-assign]
    try:
        yield
    finally:
        del backend.get_security_group_by_name_or_id  # the class's method again


class RevocableSecurityGroupIngress(CloudFormationModel):
    """AWS::EC2::SecurityGroupIngress with a physical id (the rule id) and a delete (revoke).

    moto's model authorizes the rule but cannot revoke it, so a stack that adds a rule to
    another stack's group (the peering stacks do) cannot be deleted and launched again.
    The egress twin (ec2_filtering) changes only the direction-specific parts below.
    """

    authorize = "authorize_security_group_ingress"
    revoke = "revoke_security_group_ingress"

    @staticmethod
    def rule_arguments(properties: Dict[str, Any]) -> Dict[str, Any]:
        return _ingress_arguments(properties)

    def __init__(self, group_id: str, arguments: Dict[str, Any], rule_id: str):
        self.group_id = group_id
        self.arguments = arguments
        self.rule_id = rule_id

    @property
    def physical_resource_id(self) -> str:
        return self.rule_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ec2-securitygroupingress.html
        return "AWS::EC2::SecurityGroupIngress"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Id":
            return self.rule_id
        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> RevocableSecurityGroupIngress:
        properties = cloudformation_json["Properties"]
        backend = _backend(account_id, region_name)
        arguments = cls.rule_arguments(properties)
        try:
            group_key = properties.get("GroupId") or properties["GroupName"]
            with _peer_groups_visible(backend, arguments, region_name):
                rules, group = getattr(backend, cls.authorize)(group_key, **arguments)
        except Exception as error:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(),
                                 str(getattr(error, "message", error))) from None
        return cls(group.id, arguments, rules[0].id if rules else resource_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: RevocableSecurityGroupIngress, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> RevocableSecurityGroupIngress:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _backend(account_id, region_name)
        try:
            with _peer_groups_visible(backend, self.arguments, region_name):
                getattr(backend, self.revoke)(self.group_id, **self.arguments)
        except Exception as error:
            # The group may be gone already (deleted by the same stack), and its rules with it.
            if "does not exist" not in str(error) and "NotFound" not in type(error).__name__:
                raise
