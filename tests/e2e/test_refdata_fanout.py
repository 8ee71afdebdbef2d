"""The reference-data fan-out in a launched system (issue 26): staging's deployed state machine
lists the allow-list's independent FK groups and runs them through its Map, one refdata
invocation per group. One group fails (its upstream table was emptied: the mass-delete guard
refuses it); the other groups apply, and the failure is reported by group: the run fails, the
Map's result and the SNS notice name that group, nothing of it is written.

Tables the test adds are created and dropped by the operator (root) on dev and staging, with the
upstream reader's grant, and the staging functions' allow-list widened for the test only."""

from __future__ import annotations

import json

import pytest

from envsync_local.cli import permission_proof
from envsync_local.cycle import inbox_messages, sync

from .helpers import (
    assert_converged,
    customer_data,
    function_environment,
    function_environment_changed,
    history_row,
    query,
    repair_blocked_promotion,
    rows,
)

pytestmark = pytest.mark.launched

ADDED = {"fee_type": "CREATE TABLE fee_type (id INT PRIMARY KEY, label VARCHAR(32) NOT NULL)",
         "region_code": "CREATE TABLE region_code (id INT PRIMARY KEY, label VARCHAR(32) NOT NULL)"}


def test_independent_table_groups_fan_out_and_a_failed_group_leaves_the_others_applied(system) -> None:
    dev, staging = system["dev"], system["staging"]
    if (history_row(staging, "4") or {}).get("state") == "failed":  # run alone: the cycle left it blocked
        repair_blocked_promotion(system)
    customers = customer_data(system.handles)
    # dev's read-only user (staging's upstream reader) holds table-level SELECT on the listed tables
    [(grantee,)] = query(dev, "SELECT DISTINCT GRANTEE FROM information_schema.TABLE_PRIVILEGES "
                              "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'currency'")
    reader = grantee.replace("%", "%%")  # 'user'@'%', through the driver's parameter formatting
    listed = json.loads(function_environment(staging, "refdata")["ENVSYNC_REFDATA_CONFIG"])
    widened = {**listed, "tables": listed["tables"] + ["fee_type", "region_code"], "max_concurrency": 2}
    try:
        for handle in (dev, staging):
            for create in ADDED.values():
                query(handle, create)
        for table in ADDED:
            query(dev, f"GRANT SELECT ON `{table}` TO {reader}")
        query(dev, "INSERT INTO region_code VALUES (1, 'EMEA'), (2, 'APAC')")
        # the fault: fee_type is empty upstream while staging holds rows (an emptied upstream)
        query(staging, "INSERT INTO fee_type VALUES (1, 'wire'), (2, 'card'), (3, 'cash')")
        inbox_messages(staging)  # start from an empty mailbox

        calls = system.launched.local.calls_file
        with function_environment_changed(staging, "refdata", ENVSYNC_REFDATA_CONFIG=json.dumps(widened)):
            before = calls.read_text().count("\n")
            run = sync(staging)
            after = calls.read_text().count("\n")

        # every AWS call of the fanned-out run, as AWS would judge it (the dynamic proof)
        proof = permission_proof(system.launched.local, start=before, limit=after)
        print(proof.summary())
        assert proof.evaluated > 0 and not proof.denied, proof.summary()

        execution = run.execution
        assert (execution.status, execution.error) == ("FAILED", "EnvsyncSyncFailed"), execution.to_dict()
        visited = execution.visited()
        assert "RefDataGroups" in visited and "RefData" in visited and "Drift" not in visited
        [fan_out] = [event for event in execution.history if event["type"] == "MapStateExited"]
        assert fan_out["iterations"] == [
            {"tables": ["currency", "country"], "status": "done"},
            {"tables": ["fee_type"], "status": "failed", "error": "SyncFailed"},
            {"tables": ["region_code"], "status": "done"},
        ]
        # one refdata invocation listed the groups, then one per group, each in its own lock slot
        refdata_events = [i["event"] for i in run.invocations if i["function"].endswith("-refdata")]
        assert refdata_events[0] == {"raise_on_failure": True, "groups": True}
        assert sorted((e["slot"], tuple(e["group"])) for e in refdata_events[1:]) == [
            (0, ("currency", "country")), (1, ("fee_type",)), (2, ("region_code",))]
        # the others applied; the failed group wrote nothing
        assert rows(staging, "region_code") == rows(dev, "region_code") == [(1, "EMEA"), (2, "APAC")]
        assert rows(staging, "fee_type") == [(1, "wire"), (2, "card"), (3, "cash")]
        # reported by group: the step's notice names the group's table and why, no row values
        notices = [m for m in inbox_messages(staging) if "refdata failed" in m["subject"]]
        assert len(notices) == 1, notices
        assert "in table fee_type" in notices[0]["message"] and "refused" in notices[0]["message"]
        assert "wire" not in notices[0]["message"]
    finally:
        for table in ADDED:  # a dropped table keeps its grants: revoke first
            if query(dev, "SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = DATABASE() "
                          "AND TABLE_NAME = %s", (table,))[0][0]:
                query(dev, f"REVOKE SELECT ON `{table}` FROM {reader}")
            for handle in (dev, staging):
                query(handle, f"DROP TABLE IF EXISTS `{table}`")
    assert_converged(system.handles, customers)
