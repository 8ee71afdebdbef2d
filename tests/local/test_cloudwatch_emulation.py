"""EMF lines become metrics, alarms are evaluated on them and notify their SNS topic."""

from __future__ import annotations

import json
import time

import boto3

from envsync_local.cloudwatch_emulation import emf_metrics, evaluate_alarm, evaluate_alarms, publish_invocation


def emf_line(env: str, **values: float) -> str:
    return json.dumps({
        "_aws": {"Timestamp": 1_700_000_000_000, "CloudWatchMetrics": [{
            "Namespace": "envsync", "Dimensions": [["Env"]],
            "Metrics": [{"Name": name, "Unit": "Seconds"} for name in values]}]},
        "Env": env, **values,
    })


def test_emf_lines_become_metric_data():
    metrics = emf_metrics(["START RequestId: x", emf_line("staging", ReplicationLagSeconds=75.5), "not json {"])
    assert [(m["MetricName"], m["Value"], m["Dimensions"]) for m in metrics] == [
        ("ReplicationLagSeconds", 75.5, [{"Name": "Env", "Value": "staging"}])]


def test_missing_data_follows_treat_missing_data():
    alarm = {"ComparisonOperator": "GreaterThanThreshold", "Threshold": 60, "EvaluationPeriods": 1}
    assert evaluate_alarm({**alarm, "TreatMissingData": "breaching"}, []) == "ALARM"
    assert evaluate_alarm({**alarm, "TreatMissingData": "notBreaching"}, []) == "OK"
    assert evaluate_alarm(alarm, []) == "INSUFFICIENT_DATA"
    assert evaluate_alarm(alarm, [12.0]) == "OK"
    assert evaluate_alarm(alarm, [61.0]) == "ALARM"


def test_lag_alarm_fires_and_notifies_the_topic(aws_env, moto_server):
    session = boto3.Session(region_name="us-east-1")
    sns, sqs = session.client("sns"), session.client("sqs")
    topic = sns.create_topic(Name="envsync-test-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="envsync-test-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    session.client("cloudwatch").put_metric_alarm(
        AlarmName="envsync-test-lag", Namespace="envsync", MetricName="ReplicationLagSeconds",
        Dimensions=[{"Name": "Env", "Value": "test"}], Statistic="Maximum", Period=60,
        EvaluationPeriods=1, Threshold=60, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="breaching", AlarmActions=[topic], OKActions=[topic],
    )
    assert publish_invocation(session, moto_server.endpoint_url, "envsync-test-fn",
                              emf_line_now("test", ReplicationLagSeconds=5.0)) == 1
    assert evaluate_alarms(session, moto_server.endpoint_url, "envsync-test-") == {"envsync-test-lag": "OK"}
    publish_invocation(session, moto_server.endpoint_url, "envsync-test-fn",
                       emf_line_now("test", ReplicationLagSeconds=90.0))
    assert evaluate_alarms(session, moto_server.endpoint_url, "envsync-test-") == {"envsync-test-lag": "ALARM"}
    alarm = session.client("cloudwatch").describe_alarms(AlarmNames=["envsync-test-lag"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"
    bodies = [json.loads(json.loads(m["Body"])["Message"]) for m in
              sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    assert [b["NewStateValue"] for b in bodies][-1:] == ["ALARM"]
    events = session.client("logs").filter_log_events(logGroupName="/aws/lambda/envsync-test-fn")["events"]
    assert len(events) == 2


def emf_line_now(env: str, **values: float) -> str:
    document = json.loads(emf_line(env, **values))
    document["_aws"]["Timestamp"] = int(time.time() * 1000)
    return json.dumps(document)
