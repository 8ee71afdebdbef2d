"""Each env's dashboard: valid JSON in every env, the engine's real metrics, the env's own alarms."""

from __future__ import annotations

import json

import pytest

from envsync.observability import METRIC_UNITS, NAMESPACE
from tests.chain import chain

ENVS = chain()  # config/config.yaml envs:, upstream first


@pytest.fixture(params=ENVS)
def dashboard(request, env_stacks):
    env = request.param
    evaluated = env_stacks.evaluated(f"{env}/sync")
    props = evaluated.props("Dashboard")
    assert isinstance(props["DashboardBody"], str), "the body must be known before the stack exists"
    return env, evaluated, props, json.loads(props["DashboardBody"])


def metric_specs(body):
    """(namespace, name, {dimension: value}) of every metric every widget charts."""
    specs = []
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            names = [item for item in metric if not isinstance(item, dict)]
            specs.append((names[0], names[1], dict(zip(names[2::2], names[3::2]))))
    return specs


def test_named_per_env_and_parses_as_a_dashboard_body(dashboard):
    env, _, props, body = dashboard
    assert props["DashboardName"] == f"envsync-{env}"
    assert body["widgets"], "a dashboard without widgets"
    for widget in body["widgets"]:
        assert widget["type"] in ("alarm", "metric")
        assert 1 <= widget["width"] <= 24 and widget["height"] >= 1
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "us-east-1"
            assert widget["properties"]["period"] % 60 == 0


def test_alarm_widgets_show_exactly_the_envs_alarms(dashboard, env_stacks):
    env, evaluated, _, body = dashboard
    account = env_stacks.account(env)
    shown = [arn for widget in body["widgets"] if widget["type"] == "alarm"
             for arn in widget["properties"]["alarms"]]
    declared = [f"arn:aws:cloudwatch:us-east-1:{account}:alarm:{alarm['Properties']['AlarmName']}"
                for alarm in evaluated.of_type("AWS::CloudWatch::Alarm").values()]
    assert sorted(shown) == sorted(declared)
    # dev has no upstream (no lag alarm), only prod has a reader.
    assert len(shown) == {"dev": 3, "staging": 4, "prod": 5}[env]


def test_charts_the_metrics_the_engine_emits_with_its_dimension(dashboard, env_stacks):
    env, evaluated, _, body = dashboard
    specs = metric_specs(body)
    engine = {name for namespace, name, dims in specs if namespace == NAMESPACE}
    for namespace, name, dims in specs:
        if namespace == NAMESPACE:
            assert name in METRIC_UNITS and dims == {"Env": env}
    # Only envs with an upstream replicate, compare schemas and copy rows.
    expected = set(METRIC_UNITS) if evaluated.conditions["HasUpstream"] else {"SyncFailures"}
    assert engine == expected
    machine = f"arn:aws:states:us-east-1:{evaluated.account_id}:stateMachine:envsync-{env}-sync"
    # the machine charted is the env's, in this stack or (an env that waits for a person) in the
    # administrator's gate stack, under the same name
    machines = evaluated.of_type("AWS::StepFunctions::StateMachine") or \
        env_stacks.evaluated(f"{env}/gate").of_type("AWS::StepFunctions::StateMachine")
    assert [m["Properties"]["StateMachineName"] for m in machines.values()] == [f"envsync-{env}-sync"]
    assert ("AWS/States", "ExecutionsStarted", {"StateMachineArn": machine}) in specs
    assert ("AWS/States", "ExecutionsFailed", {"StateMachineArn": machine}) in specs


def test_aurora_replica_lag_where_the_cluster_has_a_reader(dashboard):
    _, evaluated, _, body = dashboard
    rds = [(name, dims) for namespace, name, dims in metric_specs(body) if namespace == "AWS/RDS"]
    if not evaluated.conditions["HasReader"]:
        assert rds == []
        return
    cluster = evaluated.parameters["ClusterIdentifier"]
    lag_alarm = evaluated.props("AuroraReplicaLagAlarm")
    # The chart shows the alarm's own metric, with its threshold drawn.
    assert (lag_alarm["MetricName"], {"DBClusterIdentifier": cluster}) in rds
    assert ("AuroraReplicaLag", {"DBClusterIdentifier": cluster, "Role": "READER"}) in rds
    (widget,) = [w for w in body["widgets"] if w["properties"].get("title") == "AuroraReplicaLag"]
    (line,) = widget["properties"]["annotations"]["horizontal"]
    assert line["value"] == lag_alarm["Threshold"]


def test_every_rds_metric_charted_or_alarmed_is_one_the_stand_in_publishes(dashboard):
    """The stand-in's replica publishes AWS/RDS lag with RDS's dimension sets, so prod's
    replica-lag panel and alarm have data offline (a query by other dimensions finds none)."""
    from envsync_local.cfn_models.replica import lag_metric_data

    _, evaluated, _, body = dashboard
    if not evaluated.conditions["HasReader"]:
        return
    cluster = evaluated.parameters["ClusterIdentifier"]
    published = {(item["MetricName"], frozenset((d["Name"], d["Value"]) for d in item["Dimensions"]))
                 for item in lag_metric_data(cluster, f"{cluster}-reader", 12.0)}
    queried = {(name, frozenset(dims.items())) for namespace, name, dims in metric_specs(body)
               if namespace == "AWS/RDS"}
    alarm = evaluated.props("AuroraReplicaLagAlarm")
    queried.add((alarm["MetricName"], frozenset((d["Name"], d["Value"]) for d in alarm["Dimensions"])))
    assert len(queried) == 2 and queried <= published, (queried, published)


def test_lag_chart_draws_the_configured_threshold_as_a_number(dashboard):
    _, evaluated, _, body = dashboard
    widgets = [w for w in body["widgets"] if w["properties"].get("title") == "ReplicationLagSeconds"]
    if not evaluated.conditions["HasUpstream"]:
        assert widgets == []
        return
    (line,) = widgets[0]["properties"]["annotations"]["horizontal"]
    assert line["value"] == evaluated.parameters["ReplicationLagThresholdSeconds"]
    assert line["value"] == evaluated.props("ReplicationLagAlarm")["Threshold"]
