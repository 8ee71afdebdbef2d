"""`envsync-local inbox ENV`: each message marked by its run, newest first, notices summarised."""

from __future__ import annotations

import json

from envsync_local.inbox import format_inbox, mark_runs

RUNS = [{"name": "local-prod-2", "start": 1_800_000_100.0}, {"name": "local-prod-1", "start": 1_800_000_000.0}]
APPROVAL = {"subject": "envsync: approval needed", "timestamp": "2027-01-15T08:03:30.000Z",
            "message": "envsync: prod waits for your approval\nRun: local-prod-1\nPlan digest: abc"}
FAILURE = {"subject": "envsync sync failed", "timestamp": "2027-01-15T08:01:50.000Z",
           "message": json.dumps({"plan": {"rows": "not shown"},
                                  "error": {"Error": "SyncFailed", "Cause": "migrate in prod: V4 failed"}})}
ALARM = {"subject": "ALARM: envsync-prod-sync-failures", "timestamp": "2027-01-15T08:01:51.000Z",
         "message": json.dumps({"AlarmName": "envsync-prod-sync-failures", "NewStateValue": "ALARM",
                                "NewStateReason": "offline evaluation"})}
EARLY = {"subject": "hello", "timestamp": "2027-01-15T07:00:00.000Z", "message": "before any run"}


def test_a_message_belongs_to_the_run_it_names_else_to_the_latest_run_started_before_it():
    # 1_800_000_000 = 2027-01-15T08:00:00Z; run 2 started 100 s later
    marked = {m["subject"]: m["run"] for m in mark_runs([APPROVAL, FAILURE, ALARM, EARLY], RUNS)}
    assert marked == {"envsync: approval needed": "local-prod-1",  # named, though run 2 started since
                      "envsync sync failed": "local-prod-2", "ALARM: envsync-prod-sync-failures": "local-prod-2",
                      "hello": None}


def test_the_inbox_lists_newest_first_with_the_error_of_a_notice_not_the_run_state():
    text = format_inbox("prod", mark_runs([FAILURE, APPROVAL, ALARM], RUNS), limit=2)
    lines = text.splitlines()
    assert lines[0] == "prod: 2 of 3 message(s), newest first"
    assert lines[2] == "2027-01-15T08:03:30.000Z  run local-prod-1  envsync: approval needed"
    assert "    | Run: local-prod-1" in lines
    assert "2027-01-15T08:01:51.000Z  run local-prod-2  ALARM: envsync-prod-sync-failures" in lines
    assert "    | envsync-prod-sync-failures -> ALARM (offline evaluation)" in lines
    assert "envsync sync failed" not in text  # the oldest, beyond the limit
    full = format_inbox("prod", mark_runs([FAILURE], RUNS))
    assert "    | SyncFailed: migrate in prod: V4 failed" in full and "not shown" not in full
    assert format_inbox("dev", []) == "dev: nothing was published to its topics since the inbox was subscribed"
