"""Each limit has one constant: the validator enforces it and the templates render from it."""

from __future__ import annotations

import json

from envsync_sceptre.config import stackvalues
from tests.chain import chain
from tests.conftest import parse_templates, render_project
from tests.stacks.conftest import copy_project


def test_the_lag_cap_reaches_the_templates_from_the_validators_constant(tmp_path, monkeypatch) -> None:
    envs = chain()  # the project's chain, read under the real cap
    monkeypatch.setattr(stackvalues, "MAX_LAG_THRESHOLD_SECONDS", 45)
    project = copy_project(tmp_path)
    shared = project / "config" / "config.yaml"
    shared.write_text(shared.read_text().replace("replication_lag_threshold_seconds: 60\n",
                                                 "replication_lag_threshold_seconds: 30\n"))
    templates = parse_templates({name: body for name, body in render_project(project).items()
                                 if name.endswith("/sync")})
    for env in envs:
        sync = templates[f"{env}/sync"]
        assert sync["Parameters"]["ReplicationLagThresholdSeconds"]["MaxValue"] == 45
        replica_alarm = sync["Resources"]["AuroraReplicaLagAlarm"]["Properties"]
        assert replica_alarm["Threshold"] == 45000
    dashboard = json.dumps(templates[f"{envs[-1]}/sync"]["Resources"]["Dashboard"])
    assert '\\"value\\": 45000' in dashboard and "60000" not in dashboard
    # and the validator holds the same number
    problems = stackvalues.value_problems("config/x/config.yaml", {"replication_lag_threshold_seconds": 50},
                                          {"replication_lag_threshold_seconds": 50})
    assert any("from 1 to 45" in problem for problem in problems), problems
