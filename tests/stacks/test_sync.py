"""The sync stack as each env gets it: bucket, Lambdas, roles, alarms, schedule, state machine."""

from __future__ import annotations

import ast
import json

import pytest

from envsync_sceptre.config.stackvalues import value_problems
from envsync_tools.proof.cfn_eval import as_list, statements
from tests.chain import chain
from tests.conftest import PROJECT_ROOT, parse_templates, render_project
from tests.stacks.conftest import EnvStacks, copy_project

ENVS = chain()  # config/config.yaml envs:, upstream first
SYNC_FUNCTIONS = ("validate", "plan", "migrate", "refdata", "drift")
ASL = PROJECT_ROOT / "templates" / "statemachine" / "sync.asl.json"


@pytest.fixture(params=ENVS)
def sync(request, env_stacks):
    return request.param, env_stacks.evaluated(f"{request.param}/sync"), env_stacks


def test_migration_bucket_versioned_kms_private_tls_only(sync):
    env, evaluated, stacks = sync
    props = evaluated.props("MigrationBucket")
    assert props["BucketName"] == f"envsync-{env}-migrations-{stacks.account(env)}"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": evaluated.parameters["KmsKeyArn"]}
    assert rule["BucketKeyEnabled"] is True
    assert all(props["PublicAccessBlockConfiguration"][key] is True for key in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
    (policy,) = evaluated.of_type("AWS::S3::BucketPolicy").values()
    (deny,) = statements(policy["Properties"]["PolicyDocument"])
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"


def test_migration_scripts_expire_after_30_days_including_old_versions(sync):
    _, evaluated, _ = sync
    (rule,) = evaluated.props("MigrationBucket")["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == 30
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    assert "Prefix" not in rule and "Filter" not in rule  # every script


def test_lambdas_timeout_300_in_vpc_json_logs_own_encrypted_log_group(sync):
    env, evaluated, _ = sync
    functions = evaluated.of_type("AWS::Lambda::Function")
    handlers = {f["Properties"]["Handler"] for f in functions.values()}
    assert {f"envsync.lambdas.handlers.{name}_handler" for name in SYNC_FUNCTIONS} <= handlers
    # Every handler the template names exists in the packaged code.
    for handler in handlers:
        module, function_name = handler.rsplit(".", 1)
        source = PROJECT_ROOT / "lambda_code" / (module.replace(".", "/") + ".py")
        tree = ast.parse(source.read_text())
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        defined |= {target.id for node in tree.body if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)}
        assert function_name in defined, f"{handler}: no {function_name} in {source}"
    log_groups = evaluated.of_type("AWS::Logs::LogGroup")
    used_groups = set()
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Timeout"] == 300, name
        assert props["Runtime"] == evaluated.parameters["LambdaRuntime"] == "python3.9"
        assert props["Code"] == {"S3Bucket": evaluated.parameters["LambdaCodeBucket"],
                                 "S3Key": evaluated.parameters["LambdaCodeKey"]}
        assert props["VpcConfig"]["SubnetIds"] == evaluated.parameters["PrivateSubnetIds"]
        assert props["VpcConfig"]["SecurityGroupIds"] == [evaluated.parameters["LambdaSecurityGroupId"]]
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        group = props["LoggingConfig"]["LogGroup"]["Ref"]
        used_groups.add(group)
        group_props = log_groups[group]["Properties"]
        assert group_props["KmsKeyId"] == evaluated.parameters["KmsKeyArn"]
        assert group_props["RetentionInDays"] >= 365
        assert group_props["LogGroupName"] == f"/aws/lambda/{props['FunctionName']}"
        variables = props["Environment"]["Variables"]
        assert variables["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"
        assert variables["ENVSYNC_ENV"] == env
        assert props["KmsKeyArn"] == evaluated.parameters["KmsKeyArn"]
    assert len(used_groups) == len(functions)  # one log group each


def test_lambda_environment_points_at_the_upstream_or_nothing(sync, env_stacks):
    env, evaluated, stacks = sync
    variables = evaluated.props("MigrateFunction")["Environment"]["Variables"]
    upstream = stacks.envs[env].upstream_env
    assert variables["ENVSYNC_CONNECTION_PARAMETER"] == f"/envsync/{env}/db/envsync_writer/connection"
    refdata = json.loads(variables["ENVSYNC_REFDATA_CONFIG"])
    assert refdata["tables"] and all({"name", "exclude_columns", "where", "updated_at_column"}
                                      <= set(table) for table in refdata["tables"])
    if upstream is None:
        assert not [key for key in variables if key.startswith("ENVSYNC_UPSTREAM")]
        return
    account = stacks.account(upstream)
    assert variables["ENVSYNC_UPSTREAM_ENV"] == upstream
    assert variables["ENVSYNC_UPSTREAM_READER_ROLE_ARN"] == (
        f"arn:aws:iam::{account}:role/envsync-{upstream}-source-reader")
    assert variables["ENVSYNC_UPSTREAM_CONNECTION_PARAMETER"] == (
        f"/envsync/{upstream}/db/envsync_reader/connection")
    # The external id the downstream sends is the one the upstream's reader role demands.
    upstream_sync = env_stacks.evaluated(f"{upstream}/sync")
    trust = upstream_sync.props("SourceReaderRole")["AssumeRolePolicyDocument"]
    assert statements(trust)[0]["Condition"]["StringEquals"]["sts:ExternalId"] == (
        variables["ENVSYNC_UPSTREAM_EXTERNAL_ID"])


def test_runtime_is_a_parameter_defaulting_to_python39(env_stacks):
    template = env_stacks.rendered["prod/sync"]
    assert template["Parameters"]["LambdaRuntime"]["Default"] == "python3.9"
    for name in ("prod/sync", "prod/aurora"):
        for function in (r for r in env_stacks.rendered[name]["Resources"].values()
                         if r["Type"] == "AWS::Lambda::Function"):
            assert function["Properties"]["Runtime"] == {"Ref": "LambdaRuntime"}


def allowed_actions(role_props) -> dict:
    """action -> resources over a role's inline policies (every statement an Allow)."""
    granted: dict = {}
    for policy in role_props["Policies"]:
        for statement in statements(policy["PolicyDocument"]):
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    return granted


def test_source_reader_role_only_in_source_envs_trusting_only_the_downstream_sync_role(sync):
    env, evaluated, stacks = sync
    roles = evaluated.of_type("AWS::IAM::Role")
    if env == "prod":
        assert "SourceReaderRole" not in roles
        assert "SourceReaderRoleArn" not in evaluated.outputs
        return
    downstream = next(e for e in ENVS if stacks.envs[e].upstream_env == env)
    account = stacks.account(downstream)
    props = roles["SourceReaderRole"]["Properties"]
    (trust,) = statements(props["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["ArnEquals"]["aws:PrincipalArn"] == (
        f"arn:aws:iam::{account}:role/envsync-{downstream}-sync")
    assert trust["Condition"]["StringEquals"]["sts:ExternalId"]
    granted = allowed_actions(props)
    # No S3: promotion reads the upstream's history table, never its bucket.
    assert set(granted) == {"ssm:GetParameter", "secretsmanager:GetSecretValue", "kms:Decrypt"}
    assert granted["ssm:GetParameter"] == [
        f"arn:aws:ssm:us-east-1:{stacks.account(env)}:parameter/envsync/{env}/db/envsync_reader/connection"]
    assert granted["secretsmanager:GetSecretValue"] == [evaluated.parameters["ReaderSecretArn"]]
    assert "envsync_reader" in granted["secretsmanager:GetSecretValue"][0]
    assert granted["kms:Decrypt"] == [evaluated.parameters["KmsKeyArn"]]
    kms_statement = next(s for p in props["Policies"] for s in statements(p["PolicyDocument"])
                         if s["Action"] == "kms:Decrypt")
    assert kms_statement["Condition"]["StringEquals"]["kms:ViaService"] == [
        "ssm.us-east-1.amazonaws.com", "secretsmanager.us-east-1.amazonaws.com"]


def test_sync_role_reads_the_migration_bucket_and_never_writes_it(sync):
    env, evaluated, _ = sync
    s3_actions = {action for action in allowed_actions(evaluated.props("SyncRole")) if action.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:ListBucket"}, env  # the engine never writes the bucket


def test_sync_role_assumes_only_the_upstream_reader(sync):
    env, evaluated, stacks = sync
    props = evaluated.props("SyncRole")
    assert props["RoleName"] == f"envsync-{env}-sync"
    assume = [s for p in props["Policies"] for s in statements(p["PolicyDocument"])
              if "sts:AssumeRole" in as_list(s["Action"])]
    upstream = stacks.envs[env].upstream_env
    if upstream is None:
        assert assume == []
    else:
        (statement,) = assume
        assert statement["Resource"] == (
            f"arn:aws:iam::{stacks.account(upstream)}:role/envsync-{upstream}-source-reader")


def alarms_of(evaluated):
    return {a["Properties"]["MetricName"]: a["Properties"]
            for a in evaluated.of_type("AWS::CloudWatch::Alarm").values()}


def test_replication_lag_alarms_at_60_seconds_to_the_topic(sync):
    env, evaluated, stacks = sync
    alarms = alarms_of(evaluated)
    topic = {"Ref": "SyncTopic"}
    failures = alarms["SyncFailures"]
    assert failures["Threshold"] == 1 and failures["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert failures["AlarmActions"] == [topic]
    if stacks.envs[env].upstream_env:
        lag = alarms["ReplicationLagSeconds"]
        assert lag["Namespace"] == "envsync"
        assert lag["Dimensions"] == [{"Name": "Env", "Value": env}]
        assert lag["Threshold"] == 60 and lag["ComparisonOperator"] == "GreaterThanThreshold"
        assert lag["TreatMissingData"] == "breaching"
        # one run per period: the period is the schedule's interval (rate(15 minutes))
        assert (lag["Period"], lag["EvaluationPeriods"]) == (900, 1)
        assert lag["AlarmActions"] == [topic]
        assert evaluated.template["Parameters"]["ReplicationLagThresholdSeconds"]["MaxValue"] == 60
    else:  # dev has nothing to replicate from
        assert "ReplicationLagSeconds" not in alarms
    if env == "prod":  # the only cluster with a reader
        replica = alarms["AuroraReplicaLagMaximum"]
        assert replica["Namespace"] == "AWS/RDS"
        assert replica["Threshold"] == 60000  # milliseconds
        assert replica["Dimensions"] == [{"Name": "DBClusterIdentifier",
                                          "Value": evaluated.parameters["ClusterIdentifier"]}]
        assert replica["AlarmActions"] == [topic]
    else:
        assert "AuroraReplicaLagMaximum" not in alarms
    # every break-glass apply (envsync apply --break-glass counts 1) tells the topic
    glass = alarms["BreakGlassApplies"]
    assert (glass["Namespace"], glass["Statistic"], glass["Threshold"]) == ("envsync", "Sum", 1)
    assert glass["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert glass["Dimensions"] == [{"Name": "Env", "Value": env}] and glass["AlarmActions"] == [topic]


def test_sync_role_finds_and_stops_only_its_own_machines_waiting_runs(sync):
    """One waiting run per env: the plan step lists the machine's runs, reads their history and
    stops one a newer plan replaces; explicit ARNs of this env's machine only."""
    env, evaluated, _ = sync
    granted = {}
    for policy in evaluated.props("SyncRole")["Policies"]:
        for statement in statements(policy["PolicyDocument"]):
            for action in as_list(statement["Action"]):
                granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    prefix = f"arn:aws:states:us-east-1:{evaluated.account_id}:"
    assert granted["states:ListExecutions"] == [f"{prefix}stateMachine:envsync-{env}-sync"]
    assert granted["states:GetExecutionHistory"] == granted["states:StopExecution"] == [
        f"{prefix}execution:envsync-{env}-sync:*"]
    assert not [action for action in granted if action.startswith("states:") and action not in (
        "states:ListExecutions", "states:GetExecutionHistory", "states:StopExecution")]


def test_topic_encrypted_schedule_starts_the_state_machine(sync):
    _, evaluated, _ = sync
    assert evaluated.props("SyncTopic")["KmsMasterKeyId"] == evaluated.parameters["KmsKeyArn"]
    (rule,) = evaluated.of_type("AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["ScheduleExpression"] == "rate(15 minutes)"
    assert props["State"] == "ENABLED"
    (target,) = props["Targets"]
    # By name: in prod the machine is the gate stack's (the administrator's), elsewhere this stack's.
    machine = f"arn:aws:states:us-east-1:{evaluated.account_id}:stateMachine:envsync-{evaluated.parameters['Env']}-sync"
    assert target["Arn"] == machine
    schedule_role = evaluated.props("ScheduleRole")
    start, encrypt = statements(schedule_role["Policies"][0]["PolicyDocument"])
    assert start["Action"] == "states:StartExecution"
    assert start["Resource"] == machine
    # The execution input is encrypted with the machine's key: a data key for that machine only.
    assert encrypt["Action"] == "kms:GenerateDataKey"
    assert encrypt["Condition"]["StringEquals"]["kms:EncryptionContext:aws:states:stateMachineArn"] == machine


def test_schedule_can_be_disabled_and_email_subscribed_from_config(env_stacks):
    from envsync_tools.proof.cfn_eval import Evaluated

    template = env_stacks.rendered["staging/sync"]
    values = env_stacks.parameter_values("staging/sync")
    values.update(ScheduleEnabled="false", NotificationEmail="ops@example.com")
    evaluated = Evaluated(template, values, env_stacks.account("staging"))
    assert evaluated.props("SyncSchedule")["State"] == "DISABLED"
    assert evaluated.props("SyncTopic")["Subscription"] == [
        {"Protocol": "email", "Endpoint": "ops@example.com"}]


def test_state_machine_definition_comes_from_its_file(sync, env_stacks):
    env, evaluated, _ = sync
    if env == "prod":  # gated: the administrator's gate stack holds it, naming this stack's pieces
        gate = env_stacks.evaluated("prod/gate")
        props, account = gate.props("SyncStateMachine"), gate.account_id
        assert "SyncStateMachine" not in evaluated.resources
        assert props["RoleArn"] == f"arn:aws:iam::{account}:role/envsync-prod-sync-states"
        named = props["DefinitionSubstitutions"]
        assert named["SyncFailureTopicArn"] == f"arn:aws:sns:us-east-1:{account}:envsync-prod-sync"
        for name in SYNC_FUNCTIONS:
            function = evaluated.props(f"{name.capitalize()}Function")["FunctionName"]
            assert named[f"{name.capitalize()}FunctionArn"] == f"arn:aws:lambda:us-east-1:{account}:function:{function}"
    else:
        props = evaluated.props("SyncStateMachine")
    assert json.loads(props["DefinitionString"]) == json.loads(ASL.read_text())
    substitutions = props["DefinitionSubstitutions"]
    if env != "prod":
        assert substitutions["SyncFailureTopicArn"] == {"Ref": "SyncTopic"}
        for name in SYNC_FUNCTIONS:
            key = f"{name.capitalize()}FunctionArn"
            assert substitutions[key] == {"Fn::GetAtt": [f"{name.capitalize()}Function", "Arn"]}
    text = ASL.read_text()
    import re
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(substitutions)


def test_state_machine_flow_retries_loop_and_failure_branch():
    definition = json.loads(ASL.read_text())
    states = definition["States"]
    flow, loops, gates, current = [], {}, {}, definition["StartAt"]
    while current in states and states[current]["Type"] in ("Task", "Map") and current != "NotifyFailure":
        flow.append(current)
        if states[current]["Type"] == "Task":
            assert states[current]["Parameters"]["raise_on_failure"] is True
        current = states[current].get("Next")
        if states.get(current, {}).get("Type") == "Choice":
            choice = states[current]
            rule = choice["Choices"][-1]
            if "StringEquals" in rule:
                assert rule["StringEquals"] == "continue"
                loops[rule["Next"]] = rule["Variable"]
            elif "IsPresent" in rule:  # after the fan-out: a failed group fails the run (its step notified)
                assert (rule["Variable"], rule["Next"], states[rule["Next"]]["Type"]) == (
                    "$.refdata.failed[0]", "Failed", "Fail")
            else:  # the approval: a detour through the wait, back to the same next state
                superseded, rule = choice["Choices"]
                assert (superseded["Variable"], superseded["BooleanEquals"]) == ("$.plan.approval.superseded", True)
                assert states[superseded["Next"]] == {"Type": "Succeed"}  # ends, no message
                gates[current] = (rule["Variable"], rule["BooleanEquals"], rule["Next"])
                assert states[rule["Next"]]["Next"] == choice["Default"]
            current = choice["Default"]
    assert loops == {"Migrate": "$.migrate.status"}
    assert gates == {"NeedsApproval": ("$.plan.approval.required", True, "WaitForApproval")}
    assert flow == ["Validate", "Plan", "Migrate", "RefDataGroups", "RefData", "Drift"]
    # the fan-out: one iteration per FK group the refdata step lists after the migrations, at
    # most the config's max_concurrency at once, each with its own cursor loop and slot of the
    # shared schema lock; a failed group is caught in its iteration so the others apply
    fan_out = states["RefData"]
    assert states["RefDataGroups"]["Parameters"]["groups"] is True
    assert (fan_out["ItemsPath"], fan_out["MaxConcurrencyPath"]) == ("$.refdata.groups", "$.refdata.max_concurrency")
    assert fan_out["ItemSelector"]["approval.$"] == "$.plan.approval"  # every group gets the one decision
    assert fan_out["ItemSelector"]["refdata"] == {"cursor": None}
    group = fan_out["ItemProcessor"]["States"]["Group"]
    assert group["Parameters"]["cursor.$"] == "$.refdata.cursor" and group["Parameters"]["group.$"] == "$.group"
    assert fan_out["ItemProcessor"]["States"]["MoreGroup"]["Choices"] == [
        {"Variable": "$.refdata.status", "StringEquals": "continue", "Next": "Group"}]
    assert group["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "GroupFailure"}]
    assert fan_out["ResultSelector"]["failed.$"] == "$[?(@.status == 'failed')]"
    states = {**states, "Group": group}
    # the plan step knows its run (to find the env's other waiting runs)
    assert states["Plan"]["Parameters"]["run_id.$"] == "$$.Execution.Id"
    for name in [*flow, "Group"]:
        state = states[name]
        if state["Type"] == "Task":
            assert state["Retry"] and state["Retry"][0].get("MaxAttempts", 3) >= 2  # ASL's default is 3
        if name == "Group":
            continue
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failure"}]
    # the wait: the plan step publishes the plan (no token in any message), the token stays in
    # the task's parameters (the run's history, where `envsync approve` reads it), the decision
    # goes into the gate, which the steps that change the env receive; a rejection or timeout notifies
    wait = states["WaitForApproval"]
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert wait["Parameters"]["FunctionName"] == "${PlanFunctionArn}"
    assert wait["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
    assert wait["Parameters"]["Payload"]["approval.$"] == "$.plan.approval"
    assert "$$.Task.Token" not in json.dumps({k: v for k, v in states.items() if k != "WaitForApproval"})
    assert wait["TimeoutSecondsPath"] == "$.plan.approval.timeout_seconds"
    assert wait["ResultPath"] == "$.plan.approval.decision"
    assert wait["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failure"}]
    assert states["Migrate"]["Parameters"]["approval.$"] == fan_out["ItemSelector"]["approval.$"] == "$.plan.approval"
    assert group["Parameters"]["approval.$"] == "$.approval"
    # a step's failure was published by the step (named fields); anything else gets one line here
    failure = states["Failure"]
    assert failure["Choices"] == [{"Variable": "$.error.Error", "StringEquals": "SyncFailed", "Next": "Failed"}]
    assert failure["Default"] == "NotifyFailure"
    notify = states["NotifyFailure"]
    assert notify["Resource"] == "arn:aws:states:::sns:publish"
    assert notify["Parameters"]["TopicArn"] == "${SyncFailureTopicArn}"
    assert states[notify["Next"]]["Type"] == "Fail"


def test_state_machine_role_invokes_only_the_five_functions_and_publishes_only_to_the_topic(sync):
    _, evaluated, _ = sync
    granted = {}
    for policy in evaluated.props("StateMachineRole")["Policies"]:
        for statement in statements(policy["PolicyDocument"]):
            for action in as_list(statement["Action"]):
                granted[action] = as_list(statement["Resource"])
    assert granted["lambda:InvokeFunction"] == [
        {"Fn::GetAtt": [f"{name.capitalize()}Function", "Arn"]} for name in SYNC_FUNCTIONS]
    assert granted["sns:Publish"] == [{"Ref": "SyncTopic"}]
    assert set(granted) == {"lambda:InvokeFunction", "sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"}
    assert granted["kms:Decrypt"] == [evaluated.parameters["KmsKeyArn"]]


def test_failure_message_is_built_from_named_fields_only():
    """NotifyFailure names the run, the machine and the error's name: never the state
    (`States.JsonToString($)`) or an error's cause, which can quote a server message and rows."""
    definition = json.loads(ASL.read_text())
    assert definition["States"]["NotifyFailure"]["Parameters"]["Message.$"] == (
        "States.Format('envsync: run {} of {} failed: {}',$$.Execution.Name,$$.StateMachine.Name,$.error.Error)")
    text = ASL.read_text()
    assert "JsonToString" not in text and "Cause" not in json.dumps(
        {name: state for name, state in definition["States"].items() if name != "Failed"})
    assert definition["States"]["Plan"]["ResultSelector"] == {
        "status.$": "$.status", "destructive.$": "$.destructive", "approval.$": "$.approval"}


def test_the_lag_alarm_period_follows_the_schedule(tmp_path):
    # staging on an hourly schedule: a 900 s period would be in ALARM 45 minutes of every hour
    project = copy_project(tmp_path)
    staging = project / "config" / "staging" / "config.yaml"
    staging.write_text(staging.read_text() + "sync_schedule: rate(1 hour)\n")
    stacks = EnvStacks(parse_templates(render_project(project)), project)
    periods = {env: alarms_of(stacks.evaluated(f"{env}/sync"))["ReplicationLagSeconds"]["Period"]
               for env in ("staging", "prod")}
    assert periods == {"staging": 3600, "prod": 900}


def test_a_schedule_the_alarm_cannot_follow_is_refused_naming_the_file():
    shared = {"sync_schedule": "rate(15 minutes)"}
    for schedule, reason in (("cron(0 * * * ? *)", "only rate(N minutes|hours|days) has a fixed interval"),
                             ("rate(2 days)", "runs more than a day apart cannot be alarmed on")):
        problems = value_problems("config/staging/config.yaml", {"sync_schedule": schedule}, shared)
        assert any(p.startswith("config/staging/config.yaml: sync_schedule") and reason in p
                   for p in problems), problems
