"""The dynamic proof scopes calls by stack attempt: a call made during a stack create that
rolled back (a failed first create, retried) named resources the rollback deleted and the
retry made again under other ARNs, so judging it against the world deployed at the end would
deny it for a resource that no longer exists. It is left to the retry's same call, counted;
a call of a rolled-back attempt that the retry never makes is still judged."""

from __future__ import annotations

from typing import Any, Dict, List

from envsync_local.proof.dynamic import World, attempted_calls, evaluate_calls
from envsync_tools.proof.policy import Principal

ACCOUNT = "111111111111"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/envsync-dev-sync-users"
FIRST_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:envsync-dev-reader-AbCdEf"
RETRY_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:envsync-dev-reader-GhIjKl"
FIRST_ATTEMPT = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/envsync-dev-aurora/first"
RETRY = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/envsync-dev-aurora/retry"


def deployed_world() -> World:
    """What the retry deployed: the role reads the retry's secret, by its ARN."""
    policy = {"Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": RETRY_SECRET}]}
    return World(roles={ROLE: Principal(arn=ROLE, identity_policies=[policy])})


def secret_call(action: str, secret: str, access_key: str) -> Dict[str, Any]:
    return {"kind": "api", "account": ACCOUNT, "service": "secretsmanager", "action": action, "method": "POST",
            "path": "/", "resource": "*", "params": {"SecretId": secret}, "access_key": access_key,
            "role_arn": ROLE, "session": "envsync-dev-sync-users"}


def attempt(stack_id: str, access_key: str, calls: List[Dict[str, Any]], status: str) -> List[Dict[str, Any]]:
    """A stack create as the stand-in records it: the key minted for its custom resource, the
    calls made with it, the create's outcome."""
    return [{"kind": "attempt-key", "stack_id": stack_id, "access_key": access_key}, *calls,
            {"kind": "attempt", "account": ACCOUNT, "stack": "envsync-dev-aurora", "stack_id": stack_id,
             "status": status}]


def no_outside_principals(call: Dict[str, Any]) -> None:
    return None


def test_a_rolled_back_attempts_read_of_a_replaced_secret_is_left_to_the_retry():
    calls = [*attempt(FIRST_ATTEMPT, "KEY1", [secret_call("secretsmanager:GetSecretValue", FIRST_SECRET, "KEY1")],
                      "ROLLBACK_COMPLETE"),
             *attempt(RETRY, "KEY2", [secret_call("secretsmanager:GetSecretValue", RETRY_SECRET, "KEY2")],
                      "CREATE_COMPLETE")]
    assert attempted_calls(calls) == {1}
    report = evaluate_calls(calls, deployed_world(), no_outside_principals)
    assert report.denied == [], [str(item) for item in report.denied]
    assert (report.recorded, report.evaluated, report.rolled_back) == (2, 1, 1)
    assert "1 of rolled-back first creates left to their retry's same calls" in report.summary()


def test_a_rolled_back_attempts_call_the_retry_never_makes_is_still_judged():
    first = [secret_call("secretsmanager:GetSecretValue", FIRST_SECRET, "KEY1"),
             secret_call("secretsmanager:DeleteSecret", FIRST_SECRET, "KEY1")]
    calls = [*attempt(FIRST_ATTEMPT, "KEY1", first, "ROLLBACK_FAILED"),
             *attempt(RETRY, "KEY2", [secret_call("secretsmanager:GetSecretValue", RETRY_SECRET, "KEY2")],
                      "CREATE_COMPLETE")]
    report = evaluate_calls(calls, deployed_world(), no_outside_principals)
    assert [(item.action, item.resource) for item in report.denied] == [("secretsmanager:DeleteSecret", FIRST_SECRET)]
    assert (report.evaluated, report.rolled_back) == (2, 1)


def test_calls_of_a_create_that_completed_are_judged_as_before():
    calls = attempt(RETRY, "KEY2", [secret_call("secretsmanager:GetSecretValue", FIRST_SECRET, "KEY2")],
                    "CREATE_COMPLETE")
    report = evaluate_calls(calls, deployed_world(), no_outside_principals)
    assert [item.resource for item in report.denied] == [FIRST_SECRET]
    assert report.rolled_back == 0 and "rolled-back" not in report.summary()
