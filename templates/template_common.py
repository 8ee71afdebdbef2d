"""What the network and peering templates share: ports, the AZ count, the NACL rule-number bands,
the permissions boundary, and the small CloudFormation builders both use.

Imported by its module name from `network.py` and `peering.py`: Sceptre puts the directory of a
Python template on `sys.path` while it loads the template.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

AZ_COUNT = 2
MYSQL_PORT = 3306
HTTPS_PORT = 443
EPHEMERAL_PORTS = (1024, 65535)

# NACL rule numbers of the private subnets' ACL. 100-199 are the peering stacks' (allow 3306 /
# deny the rest of the peer CIDR), so they come before the network stack's own rules from 200
# on (its 0.0.0.0/0 entries included).
PEERING_NACL_RULES = {
    "requester": {"deny_mysql_in": 100, "allow": 101, "deny": 150},
    "accepter": {"allow": 110, "deny": 160},
}
NETWORK_NACL_RULE_BASE = 200

# The bootstrap stack's permissions boundary: the execution role creates roles only with it.
BOUNDARY = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/envsync-boundary"}


def ref(name: str) -> Dict[str, str]:
    return {"Ref": name}


def sub(text: str) -> Dict[str, str]:
    return {"Fn::Sub": text}


def nacl_entry(acl: Dict[str, Any], egress: bool, number: int, cidr: str, action: str, protocol: int,
               ports: Optional[Tuple[int, int]] = None) -> Dict[str, Any]:
    """An AWS::EC2::NetworkAclEntry (`protocol` 6 for TCP, -1 for all; `ports` for TCP only)."""
    properties: Dict[str, Any] = {
        "NetworkAclId": acl,
        "RuleNumber": number,
        "Protocol": protocol,
        "RuleAction": action,
        "Egress": egress,
        "CidrBlock": cidr,
    }
    if ports is not None:
        properties["PortRange"] = {"From": ports[0], "To": ports[1]}
    return {"Type": "AWS::EC2::NetworkAclEntry", "Properties": properties}


def document(description: str, parameters: Dict[str, Any], resources: Dict[str, Any], outputs: Dict[str, Any],
             conditions: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A whole template, its sections in the order every Python template renders them."""
    template: Dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Description": description,
                                "Parameters": parameters}
    if conditions:
        template["Conditions"] = conditions
    template.update(Resources=resources, Outputs=outputs)
    return template
