"""AWS::RDS::DBCluster, AWS::RDS::DBClusterParameterGroup and clustered AWS::RDS::DBInstance.

moto 5.2.5 has the RDS APIs for all three but no CloudFormation model for the first two, and
its DBInstance model ignores `DBClusterIdentifier`. Clusters and their instances are created
in moto's RDS backend, so `describe_db_clusters` / `describe_db_instances` see them; their
endpoints are the account's local database (see `endpoints`), so the connection strings the
stacks write point at the local MariaDB stand-in.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional

from moto.core.common_models import CloudFormationModel
from moto.rds.models import (
    DBCluster,
    DBClusterParameterGroup,
    DBInstance,
    DBInstanceClustered,
    DBSubnetGroup,
    RDSBackend,
    rds_backends,
)

from envsync_local.cfn_models import endpoints, replica
from envsync_local.cfn_models.stack_engine import ResourceFailed
from envsync_local.cfn_models.stand_in import StandsInFor

# What CloudFormation replaces (new physical resource) rather than updates in place.
CLUSTER_REPLACEMENT_PROPERTIES = (
    "DBClusterIdentifier", "Engine", "StorageEncrypted", "KmsKeyId", "DBSubnetGroupName",
    "MasterUsername", "DatabaseName", "AvailabilityZones", "EngineMode",
)
INSTANCE_REPLACEMENT_PROPERTIES = (
    "DBInstanceIdentifier", "DBClusterIdentifier", "Engine", "AvailabilityZone",
)
MANAGED_SECRET_ROTATION_DAYS = 7
RDS_REFUSED_CHARACTERS = "\"'@/\\"


def _name(value: Any) -> Any:
    """moto's `Ref` to some RDS models yields the model itself; we want its name."""
    return getattr(value, "name", value)


def _as_bool(value: Any) -> bool:
    return str(value).lower() == "true" if isinstance(value, str) else bool(value)


def _replaced(old: Dict[str, Any], new: Dict[str, Any], keys: tuple) -> bool:
    return any(old.get(key) != new.get(key) for key in keys)


class LocalEndpointCluster(DBCluster):
    """A moto DBCluster whose writer and reader endpoints are the env's local database."""

    def __init__(self, backend: RDSBackend, local: endpoints.DatabaseEndpoint, **kwargs: Any):
        self.local_endpoint = local
        super().__init__(backend, **kwargs)
        self.port = local.port
        self.engine_lifecycle_support: Optional[str] = kwargs.get("engine_lifecycle_support")

    @property
    def endpoint(self) -> str:
        return self.local_endpoint.host

    @property
    def reader_endpoint(self) -> str:
        """The replica once the cluster has a reader instance; the writer until then (as Aurora)."""
        has_reader = any(not member.is_cluster_writer for member in self.members)
        return self.local_endpoint.reader_host if has_reader and self.local_endpoint.reader_host \
            else self.local_endpoint.host


class LocalEndpointInstance(DBInstanceClustered):
    """An Aurora instance of a LocalEndpointCluster: same local host and port."""

    @property
    def address(self) -> str:
        cluster = getattr(self, "cluster", None)
        if isinstance(cluster, LocalEndpointCluster):
            local = cluster.local_endpoint
            return local.reader_host if local.reader_host and not self.is_cluster_writer else local.host
        return super().address

    @property
    def port(self) -> int:
        cluster = getattr(self, "cluster", None)
        if isinstance(cluster, LocalEndpointCluster):
            return cluster.local_endpoint.port
        return self._port

    @port.setter
    def port(self, value: int) -> None:
        self._port = value


class AuroraCluster(CloudFormationModel):
    """AWS::RDS::DBCluster backed by moto's RDS backend."""

    def __init__(self, cluster: DBCluster, properties: Dict[str, Any]):
        self.cluster = cluster
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return "DBClusterIdentifier"

    @staticmethod
    def cloudformation_type() -> str:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-rds-dbcluster.html
        return "AWS::RDS::DBCluster"

    @property
    def physical_resource_id(self) -> str:
        return self.cluster.db_cluster_identifier

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in (
            "Endpoint.Address", "Endpoint.Port", "ReadEndpoint.Address", "DBClusterArn",
            "DBClusterResourceId", "MasterUserSecret.SecretArn",
        )

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        cluster = self.cluster
        if attribute_name == "Endpoint.Address":
            return cluster.endpoint
        if attribute_name == "Endpoint.Port":
            return str(cluster.port)
        if attribute_name == "ReadEndpoint.Address":
            return cluster.reader_endpoint
        if attribute_name == "DBClusterArn":
            return cluster.db_cluster_arn
        if attribute_name == "DBClusterResourceId":
            return cluster.db_cluster_resource_id
        if attribute_name == "MasterUserSecret.SecretArn":
            if not cluster.manage_master_user_password:
                raise UnformattedGetAttTemplateException()
            return cluster.master_user_secret.secret_arn
        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True

    @staticmethod
    def _cluster_kwargs(resource_name: str, properties: Dict[str, Any]) -> Dict[str, Any]:
        manage = _as_bool(properties.get("ManageMasterUserPassword", False))
        master_secret = properties.get("MasterUserSecret") or {}
        kwargs: Dict[str, Any] = {
            "db_cluster_identifier": properties.get("DBClusterIdentifier", resource_name).lower(),
            "engine": properties["Engine"],
            "engine_version": properties.get("EngineVersion"),
            "engine_mode": properties.get("EngineMode"),
            "master_username": properties.get("MasterUsername"),
            "master_user_password": None if manage else properties.get("MasterUserPassword"),
            "manage_master_user_password": manage,
            "master_user_secret_kms_key_id": master_secret.get("KmsKeyId"),
            "database_name": properties.get("DatabaseName"),
            "db_cluster_parameter_group_name": _name(properties.get("DBClusterParameterGroupName")),
            "db_subnet_group_name": _name(properties.get("DBSubnetGroupName")),
            "vpc_security_group_ids": list(properties.get("VpcSecurityGroupIds") or []),
            "availability_zones": properties.get("AvailabilityZones"),
            "storage_encrypted": _as_bool(properties.get("StorageEncrypted", False)),
            "kms_key_id": properties.get("KmsKeyId"),
            "backup_retention_period": int(properties.get("BackupRetentionPeriod", 1)),
            "deletion_protection": _as_bool(properties.get("DeletionProtection", False)),
            "copy_tags_to_snapshot": _as_bool(properties.get("CopyTagsToSnapshot", False)),
            "enable_iam_database_authentication": _as_bool(
                properties.get("EnableIAMDatabaseAuthentication", False)),
            "enable_cloudwatch_logs_exports": list(properties.get("EnableCloudwatchLogsExports") or []),
            "engine_lifecycle_support": properties.get("EngineLifecycleSupport"),
            "backtrack_window": properties.get("BacktrackWindow"),
            "tags": properties.get("Tags"),
        }
        for key, prop in (("preferred_backup_window", "PreferredBackupWindow"),
                          ("preferred_maintenance_window", "PreferredMaintenanceWindow")):
            if prop in properties:
                kwargs[key] = properties[prop]
        return {key: value for key, value in kwargs.items() if value is not None}

    @classmethod
    def _create(cls, resource_name: str, properties: Dict[str, Any], account_id: str,
                region_name: str, logical_id: Optional[str]) -> AuroraCluster:
        try:
            local = endpoints.for_account(account_id)
        except endpoints.EndpointUnavailable as error:
            raise ResourceFailed(logical_id, cls.cloudformation_type(), str(error)) from None
        backend: RDSBackend = rds_backends[account_id][region_name]
        kwargs = cls._cluster_kwargs(resource_name, properties)
        cluster_id = kwargs["db_cluster_identifier"]
        if cluster_id in backend.clusters:
            raise ResourceFailed(logical_id, cls.cloudformation_type(),
                                 f"DB cluster {cluster_id} already exists")
        # moto's RDSBackend.create_db_cluster, with the local-endpoint cluster class.
        cluster = LocalEndpointCluster(backend, local, **kwargs)
        backend.clusters[cluster_id] = cluster
        cluster.save_automated_backup()
        password = properties.get("MasterUserPassword")
        if cluster.manage_master_user_password:
            password = cls._set_master_password(backend, cluster)
        try:
            endpoints.provision_master_user(local, cluster.master_username, str(password or ""),
                                            cluster.database_name)
        except endpoints.EndpointUnavailable as error:
            backend.clusters.pop(cluster_id)
            if cluster.manage_master_user_password:
                cluster.master_user_secret.delete_secret()
            raise ResourceFailed(logical_id, cls.cloudformation_type(), str(error)) from None
        return cls(cluster, properties)

    @staticmethod
    def _set_master_password(backend: RDSBackend, cluster: DBCluster) -> str:
        """RDS puts the real master username and a generated password in the managed secret."""
        secrets = backend.secretsmanager
        password = json.loads(secrets.get_random_password(
            password_length=32, exclude_characters=RDS_REFUSED_CHARACTERS,
            exclude_numbers=False, exclude_punctuation=False, exclude_uppercase=False,
            exclude_lowercase=False, include_space=False, require_each_included_type=True,
        ))["RandomPassword"]
        secret_value = json.dumps({"username": cluster.master_username, "password": password})
        secrets.put_secret_value(cluster.master_user_secret.secret_arn, secret_value, None,
                                 None, ["AWSCURRENT"])
        # RDS rotates a managed master secret every 7 days, without a Lambda function.
        secret = cluster.master_user_secret.secret
        secret.rotation_requested = True
        secret.rotation_enabled = True
        secret.auto_rotate_after_days = MANAGED_SECRET_ROTATION_DAYS
        secret.next_rotation_date = int(time.time()) + MANAGED_SECRET_ROTATION_DAYS * 86400
        return password

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> AuroraCluster:
        return cls._create(resource_name, cloudformation_json["Properties"], account_id,
                           region_name, kwargs.get("LogicalId"))

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: AuroraCluster, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> AuroraCluster:
        properties = cloudformation_json["Properties"]
        if _replaced(original_resource.properties, properties, CLUSTER_REPLACEMENT_PROPERTIES):
            replacement = cls._create(new_resource_name, properties, account_id, region_name, None)
            original_resource.delete(account_id, region_name)
            return replacement
        cluster = original_resource.cluster
        new = cls._cluster_kwargs(cluster.db_cluster_identifier, properties)
        for key in ("engine_version", "backup_retention_period", "deletion_protection",
                    "copy_tags_to_snapshot", "preferred_backup_window",
                    "preferred_maintenance_window", "vpc_security_group_ids",
                    "engine_lifecycle_support"):
            if key in new:
                setattr(cluster, key, new[key])
        cluster.parameter_group = new.get("db_cluster_parameter_group_name", cluster.parameter_group)
        cluster.iam_auth = new["enable_iam_database_authentication"]
        cluster.enabled_cloudwatch_logs_exports = new["enable_cloudwatch_logs_exports"]
        if new.get("tags") is not None:
            cluster.tags = new["tags"]
        original_resource.properties = properties
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        self.delete_from_cloudformation_json(
            self.cluster.db_cluster_identifier, {}, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        backend: RDSBackend = rds_backends[account_id][region_name]
        if resource_name not in backend.clusters:
            return
        backend.delete_db_cluster(resource_name)
        # RDS deletes a cluster's automated backups with it (moto keeps them, so a cluster of
        # the same name created again within the minute would clash with the old snapshot).
        for snapshot_id, snapshot in list(backend.cluster_snapshots.items()):
            if snapshot.snapshot_type == "automated" and \
                    snapshot.cluster.db_cluster_identifier == resource_name:
                backend.cluster_snapshots.pop(snapshot_id)


class AuroraClusterParameterGroup(CloudFormationModel):
    """AWS::RDS::DBClusterParameterGroup backed by moto's RDS backend."""

    def __init__(self, group: DBClusterParameterGroup, properties: Dict[str, Any]):
        self.group = group
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return "DBClusterParameterGroupName"

    @staticmethod
    def cloudformation_type() -> str:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-rds-dbclusterparametergroup.html
        return "AWS::RDS::DBClusterParameterGroup"

    @property
    def physical_resource_id(self) -> str:
        return self.group.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    def is_created(self) -> bool:
        return True

    @staticmethod
    def _parameters(properties: Dict[str, Any]) -> List[Dict[str, Any]]:
        return [
            {"ParameterName": name, "ParameterValue": str(value), "ApplyMethod": "pending-reboot"}
            for name, value in (properties.get("Parameters") or {}).items()
        ]

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> AuroraClusterParameterGroup:
        properties = cloudformation_json["Properties"]
        backend: RDSBackend = rds_backends[account_id][region_name]
        group = backend.create_db_cluster_parameter_group(
            db_cluster_parameter_group_name=properties.get(
                "DBClusterParameterGroupName", resource_name).lower(),
            db_parameter_group_family=properties["Family"],
            description=properties["Description"],
            tags=properties.get("Tags"),
        )
        group.update_cluster_parameters(cls._parameters(properties))
        return cls(group, properties)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: AuroraClusterParameterGroup, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> AuroraClusterParameterGroup:
        properties = cloudformation_json["Properties"]
        old = original_resource.properties
        if _replaced(old, properties, ("Family", "DBClusterParameterGroupName")):
            replacement = cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name)
            original_resource.delete(account_id, region_name)
            return replacement
        group = original_resource.group
        group.description = properties["Description"]
        group.parameters.clear()
        group.update_cluster_parameters(cls._parameters(properties))
        original_resource.properties = properties
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        backend: RDSBackend = rds_backends[account_id][region_name]
        if self.group.name in backend.db_cluster_parameter_groups:
            backend.delete_db_cluster_parameter_group(self.group.name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        backend: RDSBackend = rds_backends[account_id][region_name]
        if resource_name in backend.db_cluster_parameter_groups:
            backend.delete_db_cluster_parameter_group(resource_name)


class SubnetGroup(CloudFormationModel):
    """AWS::RDS::DBSubnetGroup: moto's, with a physical id (moto's `Ref` yields the object)."""

    def __init__(self, group: Any):
        self.group = group

    @property
    def physical_resource_id(self) -> str:
        return self.group.name

    @property
    def name(self) -> str:
        return self.group.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return DBSubnetGroup.cloudformation_name_type()

    @staticmethod
    def cloudformation_type() -> str:
        return DBSubnetGroup.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> SubnetGroup:
        name = str(cloudformation_json["Properties"].get("DBSubnetGroupName", resource_name)).lower()
        return cls(DBSubnetGroup.create_from_cloudformation_json(
            name, cloudformation_json, account_id, region_name, **kwargs))

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: SubnetGroup, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> SubnetGroup:
        properties = cloudformation_json["Properties"]
        if str(properties.get("DBSubnetGroupName", original_resource.name)).lower() != original_resource.name:
            replacement = cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name)
            original_resource.delete(account_id, region_name)
            return replacement
        from moto.ec2.models import ec2_backends

        ec2 = ec2_backends[account_id][region_name]
        original_resource.group.subnets = [ec2.get_subnet(subnet_id) for subnet_id in properties["SubnetIds"]]
        original_resource.group.description = properties["DBSubnetGroupDescription"]
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        backend: RDSBackend = rds_backends[account_id][region_name]
        if self.group.name in backend.subnet_groups:
            backend.delete_subnet_group(self.group.name)


class ClusterAwareDBInstance(StandsInFor, CloudFormationModel):
    """AWS::RDS::DBInstance: moto's model, plus instances that join a DBCluster.

    moto's model ignores `DBClusterIdentifier` (and fails on aurora-mysql without
    `EngineVersion`); a cluster member takes its engine version, storage, encryption and
    backups from the cluster, and its endpoint is the cluster's local database.
    """

    moto_model = DBInstance

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> DBInstance:
        properties = cloudformation_json["Properties"]
        cluster_id = properties.get("DBClusterIdentifier")
        backend: RDSBackend = rds_backends[account_id][region_name]
        if not cluster_id:
            # moto's model wants the subnet group object where the template has its name.
            group_name = _name(properties.get("DBSubnetGroupName"))
            if group_name:
                properties = {**properties, "DBSubnetGroupName": backend.subnet_groups[group_name]}
            return DBInstance.create_from_cloudformation_json(
                resource_name, {**cloudformation_json, "Properties": properties}, account_id,
                region_name, **kwargs)
        cluster = backend.clusters.get(str(cluster_id).lower())
        if cluster is None:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(),
                                 f"DB cluster {cluster_id} not found")
        instance_id = properties.get("DBInstanceIdentifier", resource_name).lower().replace("_", "-")
        db_kwargs = {
            "db_instance_identifier": instance_id,
            "db_cluster_identifier": cluster.db_cluster_identifier,
            "db_instance_class": properties.get("DBInstanceClass"),
            "engine": properties.get("Engine", cluster.engine),
            "availability_zone": properties.get("AvailabilityZone"),
            "db_subnet_group_name": _name(properties.get("DBSubnetGroupName"))
            or (cluster.db_subnet_group_name if cluster.db_subnet_group_name != "default" else None),
            "db_parameter_group_name": _name(properties.get("DBParameterGroupName")),
            "auto_minor_version_upgrade": _as_bool(properties.get("AutoMinorVersionUpgrade", True)),
            "publicly_accessible": _as_bool(properties.get("PubliclyAccessible", False)),
            "promotion_tier": int(properties.get("PromotionTier", 1)),
            "port": cluster.port,
            "monitoring_interval": (int(properties["MonitoringInterval"])
                                    if "MonitoringInterval" in properties else None),
            "monitoring_role_arn": properties.get("MonitoringRoleArn"),
            "tags": properties.get("Tags"),
        }
        db_kwargs = {key: value for key, value in db_kwargs.items() if value is not None}
        # moto's RDSBackend.create_db_instance, with the local-endpoint instance class.
        if instance_id in backend.databases:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(),
                                 f"DB instance {instance_id} already exists")
        backend._validate_db_identifier(instance_id)
        database = LocalEndpointInstance(backend=backend, **db_kwargs)
        if database.engine != cluster.engine:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(),
                                 f"engine {database.engine} does not match cluster engine {cluster.engine}")
        # Not modelled by moto's DBInstance; kept so DescribeDBInstances shows them.
        database.performance_insights_enabled = _as_bool(properties.get("EnablePerformanceInsights", False))
        database.performance_insights_kms_key_id = properties.get("PerformanceInsightsKMSKeyId")
        database.performance_insights_retention_period = properties.get("PerformanceInsightsRetentionPeriod")
        if not database.is_cluster_writer and isinstance(cluster, LocalEndpointCluster) \
                and cluster.local_endpoint.reader_host:
            # A reader instance: the env's replica server starts replicating the writer.
            try:
                replica.attach(cluster.local_endpoint)
            except Exception as error:  # the server's own replication error names the cause
                raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(), str(error)) from None
            replica.watch(replica.WatchedReader(account_id, region_name, cluster.db_cluster_identifier,
                                                instance_id, cluster.local_endpoint))
        backend.databases[instance_id] = database
        database.add_event("DB_INSTANCE_CREATE")
        database.save_automated_backup()
        return database

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: DBInstance, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> DBInstance:
        properties = cloudformation_json["Properties"]
        cluster_id = properties.get("DBClusterIdentifier")
        same_cluster = (getattr(original_resource, "db_cluster_identifier", None) or "") == (
            str(cluster_id).lower() if cluster_id else "")
        if same_cluster and properties.get("DBInstanceClass"):
            original_resource.db_instance_class = properties["DBInstanceClass"]
            if "PromotionTier" in properties and isinstance(original_resource, DBInstanceClustered):
                original_resource.promotion_tier = int(properties["PromotionTier"])
            return original_resource
        replacement = cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name)
        original_resource.delete(account_id, region_name)
        return replacement

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        backend: RDSBackend = rds_backends[account_id][region_name]
        replica.unwatch(resource_name)
        if resource_name in backend.databases:
            backend.delete_db_instance(resource_name)
