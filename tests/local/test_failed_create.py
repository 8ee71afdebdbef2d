"""A failed first create, retried: the stand-in fails the first create of every stack at a
chosen resource (moto_server --fail-first-create), rolls back as CloudFormation does, and
the retry must succeed. The whole project is launched that way in test_failed_create_launch."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

from envsync_local.cli import FailedCreates, LocalStack, failed_create_figure
from envsync_local.mariadb import free_port
from envsync_local.moto_server import MotoServer
from envsync_local.moto_server import start as start_moto
from envsync_local.proof.dynamic import attempted_calls, read_calls
from envsync_sceptre.config.envconfig import load_envs
from tests.conftest import PROJECT_ROOT
from tests.local.conftest import DEV, Account


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    """Dev's account on a moto server whose every stack fails at its last resource once."""
    base = tmp_path_factory.mktemp("fail_first_create")
    server: MotoServer = start_moto(free_port(), base / "moto.log", calls_file=base / "calls.jsonl",
                                    fail_first_create="last")
    try:
        account = Account(server, DEV)
        account.calls_file = base / "calls.jsonl"  # type: ignore[attr-defined]
        yield account
    finally:
        server.stop()


def kept_groups_template(policy: str) -> Dict[str, Any]:
    """A fixed-name log group kept by `policy`, a topic named after it (last: it depends on the
    group), and a group whose Condition is false (never the failing one)."""
    return {
        "Conditions": {"Never": {"Fn::Equals": ["a", "b"]}},
        "Resources": {
            "KeptLogs": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": policy,
                         "Properties": {"LogGroupName": f"/envsync/dev/first-create-{policy}"}},
            "Topic": {"Type": "AWS::SNS::Topic", "DependsOn": "KeptLogs",
                      "Properties": {"TopicName": f"envsync-dev-first-create-{policy}"}},
            "Skipped": {"Type": "AWS::Logs::LogGroup", "Condition": "Never",
                        "Properties": {"LogGroupName": "/envsync/dev/never"}},
        },
    }


def failed_resources(account: Account, stack: str) -> Dict[str, str]:
    events = account.client("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return {event["LogicalResourceId"]: event["ResourceStatusReason"] for event in events
            if event["ResourceStatus"] == "CREATE_FAILED"}


def log_groups(account: Account) -> list:
    return sorted(group["logGroupName"] for group in account.client("logs").describe_log_groups(
        logGroupNamePrefix="/envsync/dev/")["logGroups"])


def test_the_first_create_fails_at_the_last_resource_and_the_retry_succeeds(failing: Account):
    template = kept_groups_template("RetainExceptOnCreate")
    first = failing.create("envsync-dev-first", template)
    assert first["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = failed_resources(failing, "envsync-dev-first")
    assert list(reasons) == ["Topic"], reasons
    assert "creation failed on purpose" in reasons["Topic"] and "--fail-first-create last" in reasons["Topic"]
    # The rollback deleted the fixed-name group created before the topic failed.
    assert log_groups(failing) == []
    failing.delete("envsync-dev-first")  # as `sceptre launch` does with a ROLLBACK_COMPLETE stack
    retried = failing.create("envsync-dev-first", template)
    assert retried["StackStatus"] == "CREATE_COMPLETE"
    assert log_groups(failing) == ["/envsync/dev/first-create-RetainExceptOnCreate"]
    failing.delete("envsync-dev-first")
    failing.client("logs").delete_log_group(logGroupName="/envsync/dev/first-create-RetainExceptOnCreate")


def test_a_resource_retain_keeps_stops_the_retry_at_already_exists(failing: Account):
    template = kept_groups_template("Retain")
    assert failing.create("envsync-dev-kept", template)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert log_groups(failing) == ["/envsync/dev/first-create-Retain"]
    failing.delete("envsync-dev-kept")
    retried = failing.create("envsync-dev-kept", template)
    assert retried["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = failed_resources(failing, "envsync-dev-kept")
    assert "already exists" in reasons["KeptLogs"], reasons
    failing.delete("envsync-dev-kept")
    failing.client("logs").delete_log_group(logGroupName="/envsync/dev/first-create-Retain")


def test_a_named_target_fails_only_stacks_that_have_it(tmp_path):
    server = start_moto(free_port(), tmp_path / "moto.log", fail_first_create="KeptLogs")
    try:
        account = Account(server, DEV)
        template = kept_groups_template("RetainExceptOnCreate")
        assert account.create("envsync-dev-named", template)["StackStatus"] == "ROLLBACK_COMPLETE"
        assert list(failed_resources(account, "envsync-dev-named")) == ["KeptLogs"]
        without = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
        assert account.create("envsync-dev-other", without)["StackStatus"] == "CREATE_COMPLETE"
    finally:
        server.stop()


def test_a_managed_policy_goes_with_its_stack(failing: Account):
    """moto never deleted a managed policy; its fixed name then stopped the retry."""
    template = {"Resources": {
        "Boundary": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
            "ManagedPolicyName": "envsync-dev-first-create-boundary",
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": "envsync-dev-first-create", "PermissionsBoundary": {"Ref": "Boundary"},
            "ManagedPolicyArns": [{"Ref": "Boundary"}],
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
    }}
    iam = failing.client("iam")

    def policies() -> list:
        return [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]]

    assert failing.create("envsync-dev-policy", template)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert list(failed_resources(failing, "envsync-dev-policy")) == ["Role"]
    assert "envsync-dev-first-create-boundary" not in policies()
    failing.delete("envsync-dev-policy")
    assert failing.create("envsync-dev-policy", template)["StackStatus"] == "CREATE_COMPLETE"
    assert "envsync-dev-first-create-boundary" in policies()
    failing.delete("envsync-dev-policy")
    assert "envsync-dev-first-create-boundary" not in policies()


def test_the_record_says_which_calls_a_rolled_back_attempt_made(failing: Account):
    """The dynamic proof leaves a rolled-back attempt's calls to its retry: the record must say
    which attempt each CloudFormation call belongs to and how each attempt ended."""
    template = kept_groups_template("Delete")
    assert failing.create("envsync-dev-attempts", template)["StackStatus"] == "ROLLBACK_COMPLETE"
    failing.delete("envsync-dev-attempts")
    assert failing.create("envsync-dev-attempts", template)["StackStatus"] == "CREATE_COMPLETE"
    failing.delete("envsync-dev-attempts")
    calls = read_calls(failing.calls_file)  # type: ignore[attr-defined]
    attempts = [(call["stack_id"], call["status"]) for call in calls
                if call.get("kind") == "attempt" and call["stack"] == "envsync-dev-attempts"]
    assert [status for _, status in attempts] == ["ROLLBACK_COMPLETE", "CREATE_COMPLETE"]
    (first, _), (retry, _) = attempts
    made = {index: call["stack_id"] for index, call in enumerate(calls)
            if call.get("kind") == "cfn" and call.get("stack_id") in (first, retry)}
    assert sorted(set(made.values())) == sorted({first, retry}), made
    assert {index for index, stack_id in made.items() if stack_id == first} <= attempted_calls(calls)
    assert not {index for index, stack_id in made.items() if stack_id == retry} & attempted_calls(calls)


def figures_state(tmp_path) -> LocalStack:
    local = LocalStack(tmp_path, load_envs(PROJECT_ROOT / "config"))
    local.fail_first_create = "last"
    return local


def test_a_launch_that_creates_no_stack_says_so_with_the_first_launchs_figure(tmp_path):
    local = figures_state(tmp_path)
    first = FailedCreates(rolled_back={"envsync-dev-kms": "first-id"}, launched={"envsync-dev-kms"})
    assert failed_create_figure(local, first) == "failed-create retries: 1/1 stacks relaunched"
    again = FailedCreates(launched={"envsync-dev-kms"}, existed={"envsync-dev-kms"})
    # read back from the state directory, as a second `envsync-local up` does
    assert failed_create_figure(figures_state(tmp_path), again) == (
        "failed-create retries: not re-run, every stack exists (when created: 1/1 stacks relaunched)")
    local.fail_first_create = None
    assert failed_create_figure(local, again) == (
        "failed-create retries: not run (moto started with no failing first create)")


def test_a_created_stack_whose_first_create_did_not_fail_is_named():
    failed = FailedCreates(rolled_back={"envsync-dev-kms": "first-id"},
                           launched={"envsync-dev-kms", "envsync-dev-network", "envsync-dev-bootstrap"},
                           existed={"envsync-dev-bootstrap"})
    assert failed.figure() == "1/2 stacks relaunched"
    assert failed.never_failed() == ["envsync-dev-network"]
