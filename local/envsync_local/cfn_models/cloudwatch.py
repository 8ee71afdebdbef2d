"""AWS::CloudWatch::Alarm, backed by moto's CloudWatch backend (`put_metric_alarm`), and
AWS::CloudWatch::Dashboard with the body checks PutDashboard makes.

Every property of the alarm type is passed through, metric math (`Metrics`) included, so
`describe_alarms` shows the alarm as the template declares it.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from moto.cloudwatch.models import (
    Alarm,
    CloudWatchBackend,
    Dashboard,
    Dimension,
    Metric,
    MetricDataQuery,
    MetricStat,
    cloudwatch_backends,
)
from moto.core.common_models import CloudFormationModel

from envsync_local.cfn_models.stack_engine import ResourceFailed


def _backend(account_id: str, region_name: str) -> CloudWatchBackend:
    return cloudwatch_backends[account_id][region_name]


def _as_bool(value: Any) -> bool:
    return str(value).lower() == "true" if isinstance(value, str) else bool(value)


def metric_data_queries(metrics: Optional[List[Dict[str, Any]]]) -> Optional[List[MetricDataQuery]]:
    """CloudFormation `Metrics` -> moto's MetricDataQuery (as moto's PutMetricAlarm parses them)."""
    if not metrics:
        return None
    queries = []
    for metric in metrics:
        stat = metric.get("MetricStat")
        metric_stat = None
        if stat:
            inner = stat["Metric"]
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=inner["MetricName"], namespace=inner.get("Namespace"),
                    dimensions=[Dimension(d["Name"], d["Value"]) for d in inner.get("Dimensions", [])],
                ),
                period=stat.get("Period"), stat=stat.get("Stat"), unit=stat.get("Unit"),
            )
        queries.append(MetricDataQuery(
            query_id=metric["Id"], label=metric.get("Label"), period=metric.get("Period"),
            return_data=metric.get("ReturnData"), expression=metric.get("Expression"),
            metric_stat=metric_stat,
        ))
    return queries


class MetricAlarm(CloudFormationModel):
    """AWS::CloudWatch::Alarm. Ref is the alarm name; GetAtt Arn."""

    def __init__(self, alarm: Alarm, properties: Dict[str, Any]):
        self.alarm = alarm
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudwatch-alarm.html
        return "AWS::CloudWatch::Alarm"

    @property
    def physical_resource_id(self) -> str:
        return self.alarm.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Arn":
            return self.alarm.alarm_arn
        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True

    @classmethod
    def _put(cls, name: str, properties: Dict[str, Any], account_id: str, region_name: str,
             logical_id: Optional[str]) -> MetricAlarm:
        has_metric = "MetricName" in properties
        if has_metric == bool(properties.get("Metrics")):
            raise ResourceFailed(logical_id, cls.cloudformation_type(),
                                 "specify exactly one of MetricName and Metrics")
        if has_metric and not (properties.get("Statistic") or properties.get("ExtendedStatistic")):
            raise ResourceFailed(logical_id, cls.cloudformation_type(),
                                 "a MetricName alarm needs Statistic or ExtendedStatistic")
        alarm = _backend(account_id, region_name).put_metric_alarm(
            name=name,
            namespace=properties.get("Namespace"),
            metric_name=properties.get("MetricName"),
            metric_data_queries=metric_data_queries(properties.get("Metrics")),
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=int(properties["EvaluationPeriods"]),
            datapoints_to_alarm=(int(properties["DatapointsToAlarm"])
                                 if "DatapointsToAlarm" in properties else None),
            period=int(properties["Period"]) if "Period" in properties else None,
            threshold=float(properties["Threshold"]) if "Threshold" in properties else None,
            statistic=properties.get("Statistic"),
            extended_statistic=properties.get("ExtendedStatistic"),
            description=properties.get("AlarmDescription"),
            dimensions=list(properties.get("Dimensions") or []),
            alarm_actions=list(properties.get("AlarmActions") or []),
            ok_actions=list(properties.get("OKActions") or []),
            insufficient_data_actions=list(properties.get("InsufficientDataActions") or []),
            unit=properties.get("Unit"),
            actions_enabled=_as_bool(properties.get("ActionsEnabled", True)),
            treat_missing_data=properties.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=properties.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=properties.get("ThresholdMetricId"),
            tags=properties.get("Tags"),
        )
        return cls(alarm, properties)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> MetricAlarm:
        properties = cloudformation_json["Properties"]
        name = properties.get("AlarmName", resource_name)
        if name in _backend(account_id, region_name).alarms:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(),
                                 f"alarm {name} already exists")
        return cls._put(name, properties, account_id, region_name, kwargs.get("LogicalId"))

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: MetricAlarm, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> MetricAlarm:
        properties = cloudformation_json["Properties"]
        name = properties.get("AlarmName", original_resource.alarm.name)
        if name != original_resource.alarm.name:
            original_resource.delete(account_id, region_name)
        # PutMetricAlarm replaces an alarm of the same name.
        return cls._put(name, properties, account_id, region_name, None)

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_alarms([self.alarm.name])

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        _backend(account_id, region_name).delete_alarms([resource_name])


def dashboard_body_problem(body: Any) -> Optional[str]:
    """What PutDashboard would refuse in a body (moto stores any string), or None."""
    try:
        document = json.loads(body) if isinstance(body, str) else None
    except ValueError as error:
        return f"DashboardBody is not valid JSON ({error})"
    if not isinstance(document, dict) or not isinstance(document.get("widgets"), list):
        return "DashboardBody must be a JSON object with a widgets array"
    for index, widget in enumerate(document["widgets"]):
        if not isinstance(widget, dict) or "type" not in widget or not isinstance(widget.get("properties"), dict):
            return f"DashboardBody widgets[{index}] needs a type and properties"
        if widget["type"] == "metric" and "region" not in widget["properties"]:
            return f"DashboardBody widgets[{index}]: a metric widget needs a region"
    return None


class ValidatedDashboard(Dashboard, CloudFormationModel):
    """AWS::CloudWatch::Dashboard, refusing a body PutDashboard would refuse (moto's model stores any).

    A direct subclass of CloudFormationModel too: moto finds models through its __subclasses__()."""

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> Dashboard:
        problem = dashboard_body_problem(cloudformation_json["Properties"].get("DashboardBody"))
        if problem:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(), problem)
        return super().create_from_cloudformation_json(resource_name, cloudformation_json, account_id,
                                                       region_name, **kwargs)
