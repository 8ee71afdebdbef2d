"""What CloudWatch does around a Lambda that moto does not: ship logs, extract EMF, evaluate alarms.

In AWS a Lambda's stdout goes to its log group, CloudWatch Logs turns Embedded Metric Format
lines into metrics, and CloudWatch evaluates alarms on them and notifies their actions. moto
stores logs, metrics and alarms but does none of that work, so local mode does it here, through
the same APIs (PutLogEvents, PutMetricData, SetAlarmState, SNS Publish) in the env's account.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any, Dict, Iterable, List, Optional

import boto3

_COMPARE = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


def emf_metrics(lines: Iterable[str]) -> List[Dict[str, Any]]:
    """MetricData entries (PutMetricData shape, plus Namespace) from EMF log lines."""
    metrics: List[Dict[str, Any]] = []
    for line in lines:
        start = line.find("{")
        if start < 0 or '"_aws"' not in line:
            continue
        try:
            document = json.loads(line[start:])
        except ValueError:
            continue
        meta = document.get("_aws", {})
        timestamp = dt.datetime.fromtimestamp(meta.get("Timestamp", time.time() * 1000) / 1000, dt.timezone.utc)
        for directive in meta.get("CloudWatchMetrics", []):
            for dimension_set in directive.get("Dimensions", [[]]):
                dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set]
                for metric in directive.get("Metrics", []):
                    values = document.get(metric["Name"])
                    for value in values if isinstance(values, list) else [values]:
                        if value is None:
                            continue
                        metrics.append({
                            "Namespace": directive["Namespace"],
                            "MetricName": metric["Name"],
                            "Dimensions": dimensions,
                            "Value": float(value),
                            "Unit": metric.get("Unit", "None"),
                            "Timestamp": timestamp,
                        })
    return metrics


def publish_invocation(session: boto3.Session, endpoint_url: str, function_name: str, logs: str) -> int:
    """Ship one invocation's output to its log group and its EMF metrics to CloudWatch.

    Returns the number of metric values put.
    """
    lines = [line for line in logs.splitlines() if line.strip()]
    logs_client = session.client("logs", endpoint_url=endpoint_url)
    group = f"/aws/lambda/{function_name}"
    stream = f"{dt.date.today():%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    try:
        logs_client.create_log_group(logGroupName=group)
    except logs_client.exceptions.ResourceAlreadyExistsException:
        pass
    logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    if lines:
        logs_client.put_log_events(logGroupName=group, logStreamName=stream,
                                   logEvents=[{"timestamp": now, "message": line} for line in lines])
    metrics = emf_metrics(lines)
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint_url)
    for metric in metrics:
        namespace = metric.pop("Namespace")
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=[metric])
    return len(metrics)


# What Step Functions publishes per execution (namespace AWS/States, dimension StateMachineArn).
EXECUTION_METRICS = {"SUCCEEDED": "ExecutionsSucceeded", "FAILED": "ExecutionsFailed",
                     "TIMED_OUT": "ExecutionsTimedOut", "ABORTED": "ExecutionsAborted"}


def publish_execution(session: boto3.Session, endpoint_url: str, state_machine_arn: str, status: str,
                      seconds: float) -> None:
    """The AWS/States metrics of one finished execution, as Step Functions would put them."""
    dimensions = [{"Name": "StateMachineArn", "Value": state_machine_arn}]
    data = [{"MetricName": "ExecutionsStarted", "Dimensions": dimensions, "Value": 1.0, "Unit": "Count"},
            {"MetricName": "ExecutionTime", "Dimensions": dimensions, "Value": seconds * 1000,
             "Unit": "Milliseconds"}]
    if status in EXECUTION_METRICS:
        data.append({"MetricName": EXECUTION_METRICS[status], "Dimensions": dimensions, "Value": 1.0,
                     "Unit": "Count"})
    session.client("cloudwatch", endpoint_url=endpoint_url).put_metric_data(Namespace="AWS/States",
                                                                            MetricData=data)


def _datapoints(cloudwatch: Any, alarm: Dict[str, Any], now: dt.datetime) -> List[float]:
    period = int(alarm["Period"])
    window = dt.timedelta(seconds=period * int(alarm["EvaluationPeriods"]))
    statistic = alarm.get("Statistic") or "Maximum"
    response = cloudwatch.get_metric_statistics(
        Namespace=alarm["Namespace"], MetricName=alarm["MetricName"],
        Dimensions=alarm.get("Dimensions", []), StartTime=now - window,
        EndTime=now + dt.timedelta(seconds=1), Period=period, Statistics=[statistic],
    )
    return [point[statistic] for point in response["Datapoints"]]


def evaluate_alarm(alarm: Dict[str, Any], datapoints: List[float]) -> str:
    """ALARM / OK / INSUFFICIENT_DATA for the datapoints of the evaluation window."""
    compare = _COMPARE[alarm["ComparisonOperator"]]
    if not datapoints:
        missing = alarm.get("TreatMissingData", "missing")
        return {"breaching": "ALARM", "notBreaching": "OK"}.get(missing, "INSUFFICIENT_DATA")
    breaching = sum(1 for value in datapoints if compare(value, float(alarm["Threshold"])))
    needed = int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"])
    return "ALARM" if breaching >= min(needed, len(datapoints)) else "OK"


def evaluate_alarms(session: boto3.Session, endpoint_url: str, prefix: str = "",
                    now: Optional[dt.datetime] = None) -> Dict[str, str]:
    """Evaluate every metric alarm (name starting with prefix); set states; notify on change."""
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint_url)
    sns = session.client("sns", endpoint_url=endpoint_url)
    now = now or dt.datetime.now(dt.timezone.utc)
    states: Dict[str, str] = {}
    for alarm in cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]:
        if "MetricName" not in alarm:
            continue  # metric-math alarms are not evaluated offline
        state = evaluate_alarm(alarm, _datapoints(cloudwatch, alarm, now))
        states[alarm["AlarmName"]] = state
        if state == alarm["StateValue"]:
            continue
        reason = f"offline evaluation at {now:%H:%M:%S}: {state}"
        cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
        actions = {"ALARM": "AlarmActions", "OK": "OKActions"}.get(state, "InsufficientDataActions")
        for topic in alarm.get(actions, []):
            if topic.startswith("arn:aws:sns:"):
                sns.publish(TopicArn=topic, Subject=f"{state}: {alarm['AlarmName']}"[:99],
                            Message=json.dumps({"AlarmName": alarm["AlarmName"], "NewStateValue": state,
                                                "NewStateReason": reason}))
    return states
