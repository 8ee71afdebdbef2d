"""The `envsync` CLI as operators run it: exit codes, two concurrent applies, kill -9 mid-script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional

from tests.engine.conftest import EnvDB, write_scripts
from tests.engine.conftest import history_rows as rows

ENVSYNC = [sys.executable, "-m", "envsync.cli.main"]


def envsync(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ENVSYNC, *args], capture_output=True, text=True, timeout=120,
                          env=env, check=False)


def wait_until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_exit_codes_and_json(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev, staging = chain["dev"], chain["staging"]
    folder = str(write_scripts(tmp_path / "s", {"V1__a.sql": "CREATE TABLE a (id INT);"}))
    plan = envsync("plan", "--target", dev.url, "--scripts", folder)
    assert plan.returncode == 1, plan.stderr
    assert "CREATE TABLE a (id INT);" in plan.stdout and "statement 1 (line 1)" in plan.stdout
    assert envsync("apply", "--target", dev.url, "--scripts", folder).returncode == 0
    assert envsync("plan", "--target", dev.url, "--scripts", folder).returncode == 0
    status = envsync("--json", "status", "--target", dev.url)
    assert status.returncode == 0
    assert json.loads(status.stdout)["history"][0]["state"] == "success"
    assert envsync("validate", "--target", dev.url, "--scripts", folder).returncode == 0
    # staging is behind dev: status against the upstream is 1 (pending), apply 0, then status 0
    assert envsync("status", "--target", staging.url, "--upstream", dev.url).returncode == 1
    assert envsync("apply", "--target", staging.url, "--upstream", dev.url).returncode == 0
    table = envsync("status", "--target", staging.url, "--upstream", dev.url)
    assert table.returncode == 0 and "V1__a.sql  success" in table.stdout
    # a changed script: validate says 1, apply refuses with 2
    Path(folder, "V1__a.sql").write_text("CREATE TABLE a (id BIGINT);")
    assert envsync("validate", "--target", dev.url, "--scripts", folder).returncode == 1
    refused = envsync("apply", "--target", dev.url, "--scripts", folder)
    assert refused.returncode == 2 and "REFUSED checksum" in refused.stdout
    # unreachable database: exit 2, one clear line naming host:port, no traceback
    down = envsync("status", "--target", "mysql://root:@127.0.0.1:1/app")
    assert down.returncode == 2
    assert "cannot connect to root@127.0.0.1:1/app" in down.stderr and "Traceback" not in down.stderr
    assert envsync("status").returncode == 2


def test_env_names_resolve_from_local_envs_file(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    # the chain is what config/ says: each env's upstream, written into the envs file by
    # envsync-local; here a fourth env, qa, sits between dev and staging (qa's schema lives on
    # staging's server under its own name).
    connection = chain["staging"].connect()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{chain['staging'].database}_qa`")
    connection.close()
    upstream = {"dev": None, "qa": "dev", "staging": "qa", "prod": "staging"}
    servers = {**chain, "qa": chain["staging"]}
    envs = {name: {"upstream": upstream[name], "host": db.host, "port": db.port, "ca_bundle": db.ca_bundle,
                   "database": db.database + ("_qa" if name == "qa" else ""),
                   "users": {"root": {"user": "root", "password": ""}}} for name, db in servers.items()}
    (tmp_path / "envs.json").write_text(json.dumps(envs))
    env = {**os.environ, "ENVSYNC_LOCAL_DIR": str(tmp_path)}
    folder = str(write_scripts(tmp_path / "s", {"V1__a.sql": "CREATE TABLE a (id INT);"}))
    try:
        assert envsync("apply", "--env", "dev", "--scripts", folder, env=env).returncode == 0
        blocked = envsync("apply", "--env", "staging", env=env)  # staging pulls from qa, which has nothing
        assert blocked.returncode == 0 and "up_to_date" in blocked.stdout, blocked.stdout + blocked.stderr
        for name in ("qa", "staging"):
            promoted = envsync("apply", "--env", name, env=env)
            assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        assert envsync("apply", "--env", "prod", env=env).returncode == 2  # prod's config: approval required
        forced = envsync("apply", "--env", "prod", "--break-glass", "--reason", "test", env=env)
        assert forced.returncode == 0 and "Tell the env's approvers yourself" in forced.stderr  # no AWS here
        assert [r.version for r in rows(chain["prod"])] == ["1"]
        assert [r.source_env for r in rows(chain["staging"])] == ["qa"]
    finally:
        connection = chain["staging"].connect()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{chain['staging'].database}_qa`")
        connection.close()
    unknown = envsync("status", "--env", "test", env=env)
    assert unknown.returncode == 2 and "--env test: not in" in unknown.stderr


def test_two_concurrent_applies_one_waits_then_fails_nothing_twice(
    chain: Dict[str, EnvDB], tmp_path: Path
) -> None:
    dev = chain["dev"]
    folder = str(write_scripts(tmp_path / "s", {
        "V1__slow.sql": "CREATE TABLE counter (n INT);\nSELECT SLEEP(4);\nINSERT INTO counter VALUES (1);\n",
    }))
    first = subprocess.Popen([*ENVSYNC, "apply", "--target", dev.url, "--scripts", folder],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: dev.query("SELECT IS_USED_LOCK(%s)", (f"envsync:{dev.database}",))[0][0])
    started = time.monotonic()
    second = envsync("apply", "--target", dev.url, "--scripts", folder, "--lock-timeout", "1")
    waited = time.monotonic() - started
    assert second.returncode == 2
    assert "another envsync run holds the migration lock" in second.stderr
    assert waited >= 1.0
    out, err = first.communicate(timeout=30)
    assert first.returncode == 0, out + err
    # a third run after the first finished finds nothing to do: nothing is ever applied twice
    third = envsync("apply", "--target", dev.url, "--scripts", folder)
    assert third.returncode == 0 and "status: up_to_date" in third.stdout
    assert dev.query("SELECT COUNT(*) FROM counter") == [(1,)]
    assert [(r.version, r.state) for r in rows(dev)] == [("1", "success")]


def test_kill_9_mid_script_then_rerun_names_the_statement_in_doubt(
    chain: Dict[str, EnvDB], tmp_path: Path
) -> None:
    dev = chain["dev"]
    folder = str(write_scripts(tmp_path / "s", {
        "V1__first.sql": "CREATE TABLE a (id INT);\n",
        "V2__slow.sql": "CREATE TABLE b (id INT);\n\nSELECT SLEEP(3);\nCREATE TABLE c (id INT);\n",
        "V3__after.sql": "CREATE TABLE d (id INT);\n",
    }))
    victim = subprocess.Popen([*ENVSYNC, "apply", "--target", dev.url, "--scripts", folder],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: ("2", "running", 1) in [(r.version, r.state, r.statements_applied) for r in rows(dev)])
    time.sleep(0.3)  # let statement 2 (the SLEEP) start
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()

    rerun = envsync("apply", "--target", dev.url, "--scripts", folder, "--lock-timeout", "10")
    assert rerun.returncode == 2
    assert "V2__slow.sql statement 2 (line 3) is in doubt" in rerun.stdout
    assert "statements 1-1 are applied" in rerun.stdout
    assert "d" not in {t for (t,) in dev.query("SHOW TABLES")}

    status = envsync("status", "--target", dev.url, "--scripts", folder)
    assert status.returncode == 1 and "running" in status.stdout

    refused = envsync("repair", "--target", dev.url, "--version", "2")
    assert refused.returncode == 2 and "--resolution applied|not-applied" in refused.stderr
    repaired = envsync("repair", "--target", dev.url, "--version", "2", "--resolution", "applied")
    assert repaired.returncode == 0 and "resumes at statement 3 of 3" in repaired.stdout
    plan = envsync("plan", "--target", dev.url, "--scripts", folder)
    assert "resuming at statement 3" in plan.stdout and "SLEEP" not in plan.stdout
    assert envsync("apply", "--target", dev.url, "--scripts", folder).returncode == 0
    assert {"a", "b", "c", "d"} <= {t for (t,) in dev.query("SHOW TABLES")}
    assert [(r.version, r.state, r.statements_applied) for r in rows(dev)] == [
        ("1", "success", 1), ("2", "success", 3), ("3", "success", 1)]


def test_drift_and_refdata_commands(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev, staging = chain["dev"], chain["staging"]
    folder = str(write_scripts(tmp_path / "s", {
        "V1__currency.sql": "CREATE TABLE currency (code CHAR(3) PRIMARY KEY, name VARCHAR(40));\n"}))
    for db in (dev, staging):
        assert envsync("apply", "--target", db.url, "--scripts", folder).returncode == 0
    assert envsync("drift", "--target", staging.url, "--upstream", dev.url).returncode == 0
    staging.query("ALTER TABLE currency ADD COLUMN symbol VARCHAR(3)")
    drift = envsync("drift", "--target", staging.url, "--upstream", dev.url)
    assert drift.returncode == 1 and "symbol" in drift.stdout
    # both URLs name the same database: the report names each side by host:port/database
    assert (f"column currency.symbol: only in {staging.host}:{staging.port}/{staging.database}"
            in drift.stdout), drift.stdout
    staging.query("ALTER TABLE currency DROP COLUMN symbol")

    dev.query("INSERT INTO currency VALUES ('EUR', 'Euro'), ('USD', 'US dollar')")
    config = tmp_path / "refdata.json"
    config.write_text(json.dumps({"tables": [{"name": "currency"}]}))
    common = ["--target", staging.url, "--upstream", dev.url, "--config", str(config)]
    planned = envsync("--json", "refdata", "plan", *common)
    assert planned.returncode == 1 and json.loads(planned.stdout)["rows_changed"] == 2
    assert envsync("refdata", "apply", *common).returncode == 0
    assert envsync("refdata", "plan", *common).returncode == 0
    assert staging.query("SELECT COUNT(*) FROM currency") == [(2,)]


def test_refdata_reads_the_envs_allow_list_from_config_as_its_stack_gets_it(chain: Dict[str, EnvDB],
                                                                            tmp_path: Path) -> None:
    """`envsync refdata plan|apply --env ENV`: no JSON file; the env's `refdata_tables` (here
    staging's own, overriding config/config.yaml's) through envsync_sceptre's config model."""
    import shutil

    from tests.conftest import PROJECT_ROOT

    dev, staging = chain["dev"], chain["staging"]
    folder = str(write_scripts(tmp_path / "s", {
        "V1__rates.sql": "CREATE TABLE rate (code CHAR(3) PRIMARY KEY, value INT);\n"
                         "CREATE TABLE other_rate (code CHAR(3) PRIMARY KEY, value INT);\n"}))
    for db in (dev, staging):
        assert envsync("apply", "--target", db.url, "--scripts", folder).returncode == 0
    dev.query("INSERT INTO rate VALUES ('EUR', 1), ('USD', 2)")
    dev.query("INSERT INTO other_rate VALUES ('EUR', 1)")
    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "config", project / "config")
    with open(project / "config" / "staging" / "config.yaml", "a") as staging_config:
        staging_config.write("\nrefdata_tables:\n  - name: rate\n")
    envs = {db.name: {"host": db.host, "port": db.port, "database": db.database, "ca_bundle": db.ca_bundle,
                      "users": {"root": {"user": "root", "password": ""}}, "upstream": upstream}
            for db, upstream in ((dev, None), (staging, "dev"))}
    (tmp_path / "envs.json").write_text(json.dumps(envs))
    environment = {**os.environ, "ENVSYNC_LOCAL_DIR": str(tmp_path),  # the run's cwd is elsewhere:
                   "PYTHONPATH": os.pathsep.join(str(Path(entry).resolve())  # an absolute PYTHONPATH
                                                 for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                                 if entry)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*ENVSYNC, *args], capture_output=True, text=True, timeout=120, env=environment,
                              cwd=project / "config" / "staging", check=False)  # config/ found upwards

    planned = run("--json", "refdata", "plan", "--env", "staging")
    assert planned.returncode == 1, planned.stdout + planned.stderr
    assert [t["table"] for t in json.loads(planned.stdout)["tables"]] == ["rate"]
    assert run("refdata", "apply", "--env", "staging").returncode == 0
    assert staging.query("SELECT COUNT(*) FROM rate") == [(2,)]
    assert staging.query("SELECT COUNT(*) FROM other_rate") == [(0,)]
    # a bad allow-list names the file it came from; no env and no file says what to give
    with open(project / "config" / "staging" / "config.yaml", "a") as staging_config:
        staging_config.write("    exclude_columns: nope\n")
    bad = run("refdata", "plan", "--env", "staging")
    assert bad.returncode == 2 and "config/staging/config.yaml: refdata_tables:" in bad.stderr, bad.stderr
    neither = run("refdata", "plan", "--target", staging.url, "--upstream", dev.url)
    assert neither.returncode == 2 and "give --env NAME" in neither.stderr, neither.stderr


def test_json_applies_to_errors(tmp_path: Path) -> None:
    down = envsync("--json", "status", "--target", "mysql://root:@127.0.0.1:1/app")
    assert down.returncode == 2 and down.stderr == ""
    error = json.loads(down.stdout)
    assert error["status"] == "error" and "cannot connect to root@127.0.0.1:1/app" in error["error"]
    bad = str(write_scripts(tmp_path / "s", {"V1__x.SQL": "SELECT 1;"}))
    named = envsync("plan", "--json", "--target", "mysql://root:@127.0.0.1:1/app", "--scripts", bad)
    assert named.returncode == 2 and json.loads(named.stdout)["status"] == "error"
    usage = envsync("--json", "apply", "--no-such-flag")
    assert usage.returncode == 2 and usage.stderr == ""
    assert "unrecognized arguments: --no-such-flag" in json.loads(usage.stdout)["error"]
    assert envsync("apply", "--no-such-flag").stderr.startswith("usage:")  # without --json: argparse's


def test_output_piped_to_head_ends_quietly(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    many = "".join(f"INSERT INTO t VALUES ({n}, 'a fairly long value to fill the pipe');\n"
                   for n in range(5000))
    folder = str(write_scripts(tmp_path / "s", {"V1__many.sql": many}))
    writer = subprocess.Popen([*ENVSYNC, "plan", "--target", chain["dev"].url, "--scripts", folder],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-n", "1"], stdin=writer.stdout, capture_output=True, text=True,
                          timeout=120, check=False)
    writer.stdout.close()  # only head reads it: when head exits, the pipe has no reader
    _, stderr = writer.communicate(timeout=120)
    assert head.stdout.startswith("-- V1__many.sql")
    assert stderr == b"" and writer.returncode == 141


def test_lost_connection_error_says_so_and_points_at_status() -> None:
    import pymysql

    from envsync.cli.main import error_text

    for error in (pymysql.err.OperationalError(2013, "Lost connection to server during query"),
                  pymysql.err.InterfaceError(0, "")):
        text = error_text(error)
        assert text.startswith("lost the connection to the database") and "`envsync status`" in text


def test_local_mode_finds_the_stand_ins_of_the_project_it_runs_in(tmp_path: Path, monkeypatch) -> None:
    from envsync.cli.main import local_envs_file

    monkeypatch.delenv("ENVSYNC_LOCAL_DIR", raising=False)
    project = tmp_path / "any" / "clone"
    (project / ".local").mkdir(parents=True)
    (project / ".local" / "envs.json").write_text("{}")
    (project / "config" / "dev").mkdir(parents=True)
    assert local_envs_file(project / "config" / "dev") == project / ".local" / "envs.json"
    monkeypatch.setenv("ENVSYNC_LOCAL_DIR", str(tmp_path / "elsewhere"))
    assert local_envs_file(project) == tmp_path / "elsewhere" / "envs.json"


def test_no_machine_path_is_written_into_the_project() -> None:
    """The project runs from any clone in any directory: no absolute path of a machine in it."""
    import re

    from tests.conftest import PROJECT_ROOT

    skipped = {".git", ".local", "__pycache__", ".pytest_cache"}
    files = [path for path in PROJECT_ROOT.rglob("*")
             if path.is_file() and not any(part in skipped or part.startswith(".venv")
                                           for part in path.relative_to(PROJECT_ROOT).parts)
             and path.name.endswith((".py", ".j2", ".yaml", ".yml", ".json", ".md", ".toml", ".txt", "Makefile"))]
    assert len(files) > 50
    pattern = re.compile(r"(?<![\w.])/(?:work|home|root|Users)/[\w.-]+")
    found = [f"{path.relative_to(PROJECT_ROOT)}: {match.group(0)}" for path in files
             for match in pattern.finditer(path.read_text(errors="replace"))]
    assert not found, found


def test_an_unknown_env_is_an_error_for_every_command_never_a_fallback(tmp_path: Path) -> None:
    """Local mode: approve/reject name only envs the stand-ins' envs.json holds (a typo never
    reaches boto3's default credentials); outside local mode, the project config's envs."""
    envs = {name: {"host": "127.0.0.1", "port": 1, "database": "app", "users": {}} for name in ("dev", "staging")}
    envs["prod"] = {**envs["dev"], "aws": None}
    (tmp_path / "envs.json").write_text(json.dumps(envs))
    # Ambient credentials that would answer if anything fell back to them: none may be used.
    local = {**os.environ, "ENVSYNC_LOCAL_DIR": str(tmp_path), "AWS_ACCESS_KEY_ID": "ambient",
             "AWS_SECRET_ACCESS_KEY": "ambient", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    for command in (["approve"], ["reject", "--reason", "x"], ["status"], ["plan"], ["apply"],
                    ["refdata", "plan", "--config", "c.json"]):
        for typo in ("qa", "Prod"):
            done = envsync(*command, "--env", typo, env=local)
            assert done.returncode == 2, (command, typo, done.stdout, done.stderr)
            assert f"--env {typo}: not in {tmp_path / 'envs.json'} (known: dev, prod, staging)" in done.stderr
            assert "Traceback" not in done.stderr and "127.0.0.1:1" not in done.stderr
    typo = envsync("status", "--target", "mysql://root:@127.0.0.1:1/app", "--env", "qa", env=local)
    assert typo.returncode == 2 and "--env qa: not in" in typo.stderr  # a label is checked too
    upstream = envsync("status", "--env", "staging", "--upstream-env", "stagin", env=local)
    assert upstream.returncode == 2 and "--upstream-env stagin: not in" in upstream.stderr
    # an env the file names without an AWS stand-in: refused, not answered with other credentials
    bare = envsync("approve", "--env", "prod", env=local)
    assert bare.returncode == 2 and "names no AWS stand-in for it" in bare.stderr, bare.stderr
    # outside local mode the project's chain (config/config.yaml envs:) names the known envs
    config = tmp_path / "project" / "config"
    config.mkdir(parents=True)
    (config / "config.yaml").write_text("approval: none\nhooks: !envsync_validate x\n"
                                        "envs:\n  dev: {account_id: '111111111111'}\n  prod: {}\n")
    real = {key: value for key, value in local.items() if key != "ENVSYNC_LOCAL_DIR"}
    real["ENVSYNC_CONFIG_DIR"] = str(config)
    done = subprocess.run([*ENVSYNC, "approve", "--env", "qa"], capture_output=True, text=True, timeout=60,
                          env=real, cwd=tmp_path, check=False)
    assert done.returncode == 2 and f"--env qa: not in {config} (known: dev, prod)" in done.stderr, done.stderr


def test_apply_into_a_gated_env_refuses_unless_break_glass_which_is_recorded_published_and_counted(
    chain: Dict[str, EnvDB], tmp_path: Path, aws_env: Dict[str, str],
) -> None:
    """Prod's config says `approval: required`: `envsync apply` and `refdata apply` refuse what
    needs a person; `--break-glass --reason` applies, and the history, the envsync_break_glass
    table, prod's topic and the BreakGlassApplies metric all say who, when and why."""
    import boto3

    from envsync.approval import break_glass

    accounts = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
    local_aws = {"endpoint_url": aws_env["AWS_ENDPOINT_URL"], "region": "us-east-1",
                 "access_key_id": aws_env["AWS_ACCESS_KEY_ID"], "secret_access_key": aws_env["AWS_SECRET_ACCESS_KEY"]}
    upstream = {"dev": None, "staging": "dev", "prod": "staging"}
    envs = {name: {"account_id": accounts[name], "upstream": upstream[name], "host": db.host, "port": db.port,
                   "database": db.database,
                   "ca_bundle": db.ca_bundle, "users": {"root": {"user": "root", "password": ""}}, "aws": local_aws}
            for name, db in chain.items()}
    (tmp_path / "envs.json").write_text(json.dumps(envs))
    env = {**os.environ, "ENVSYNC_LOCAL_DIR": str(tmp_path)}  # the project's config: prod is gated
    # prod's topic, with an inbox, in prod's account
    base = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    creds = base.client("sts").assume_role(RoleArn="arn:aws:iam::333333333333:role/envsync-deployer",
                                           RoleSessionName="test")["Credentials"]
    prod_aws = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                             aws_session_token=creds["SessionToken"], region_name="us-east-1")
    topic = prod_aws.client("sns").create_topic(Name="envsync-prod-sync")["TopicArn"]
    sqs = prod_aws.client("sqs")
    inbox = sqs.create_queue(QueueName=f"inbox-{os.getpid()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    prod_aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    folder = str(write_scripts(tmp_path / "s", {
        "V1__currency.sql": "CREATE TABLE currency (code CHAR(3) PRIMARY KEY, name VARCHAR(40));\n"}))
    assert envsync("apply", "--env", "dev", "--scripts", folder, env=env).returncode == 0
    assert envsync("apply", "--env", "staging", env=env).returncode == 0
    refused = envsync("apply", "--env", "prod", env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "need a person's approval here (required" in refused.stdout and "--break-glass --reason" in refused.stdout
    assert rows(chain["prod"]) == []
    no_reason = envsync("apply", "--env", "prod", "--break-glass", env=env)
    assert no_reason.returncode == 2 and "--break-glass needs --reason" in no_reason.stderr
    ungated = envsync("apply", "--env", "staging", "--break-glass", "--reason", "x", env=env)
    assert ungated.returncode == 2 and "has no approval gate" in ungated.stderr

    glass = envsync("apply", "--env", "prod", "--break-glass", "--reason", "INC-42: rates page down", env=env)
    assert glass.returncode == 0, glass.stdout + glass.stderr
    assert "BREAK-GLASS recorded in envsync_break_glass" in glass.stdout and glass.stderr == ""
    (row,) = rows(chain["prod"])
    assert row.state == "success" and "(BREAK-GLASS: INC-42: rates page down)" in row.applied_by
    with chain["prod"].connect() as connection:
        (audit,) = break_glass.read(connection)
    assert (audit["env"], audit["what"], audit["reason"]) == ("prod", "migrations", "INC-42: rates page down")
    assert audit["outcome"] == "applied: V1__currency.sql" and len(audit["plan_digest"]) == 64

    # reference data: staging (no gate) follows dev; prod refuses, then breaks glass
    config = tmp_path / "refdata.json"
    config.write_text(json.dumps({"tables": [{"name": "currency"}]}))
    chain["dev"].query("INSERT INTO currency VALUES ('CHF', 'Swiss franc')")
    assert envsync("refdata", "apply", "--env", "staging", "--config", str(config), env=env).returncode == 0
    held = envsync("refdata", "apply", "--env", "prod", "--config", str(config), env=env)
    assert held.returncode == 2 and "reference-data changes (currency +1 ~0 -0) need a person's approval" in held.stderr
    assert chain["prod"].query("SELECT COUNT(*) FROM currency") == [(0,)]
    assert envsync("refdata", "plan", "--env", "prod", "--config", str(config), env=env).returncode == 1  # reads
    rows_glass = envsync("refdata", "apply", "--env", "prod", "--config", str(config), "--break-glass",
                         "--reason", "INC-43", env=env)
    assert rows_glass.returncode == 0, rows_glass.stdout + rows_glass.stderr
    assert chain["prod"].query("SELECT code FROM currency") == [("CHF",)]
    with chain["prod"].connect() as connection:
        assert [(a["what"], a["reason"], a["outcome"]) for a in break_glass.read(connection)][1:] == [
            ("refdata", "INC-43", "applied: currency +1 ~0 -0")]

    # prod's topic heard both, and the metric counted both
    bodies = []
    while True:
        batch = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        bodies += [json.loads(m["Body"]) for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=inbox, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(b["Subject"] for b in bodies) == ["envsync: BREAK-GLASS apply in prod"] * 2
    assert any("Reason: INC-42: rates page down" in b["Message"] for b in bodies)
    datapoints = prod_aws.client("cloudwatch").get_metric_statistics(
        Namespace="envsync", MetricName="BreakGlassApplies", Dimensions=[{"Name": "Env", "Value": "prod"}],
        StartTime=time.time() - 3600, EndTime=time.time() + 60, Period=3600, Statistics=["Sum"])["Datapoints"]
    assert [d["Sum"] for d in datapoints] == [2.0]


def test_plan_and_validate_read_the_source_envs_bucket_and_the_upstreams_history_without_a_scripts_dir(
    chain: Dict[str, EnvDB], tmp_path: Path, aws_env: Dict[str, str],
) -> None:
    """Offline, as README's operator section: `envsync plan|validate --env dev` read dev's
    migration bucket (SSE-KMS, as the sync stack makes it) as dev's approver role, `--env
    staging` dev's history; no local copy of the scripts."""
    import boto3

    accounts = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
    upstream = {"dev": None, "staging": "dev", "prod": "staging"}
    envs = {name: {"account_id": accounts[name], "upstream": upstream[name], "host": db.host, "port": db.port,
                   "database": db.database, "ca_bundle": db.ca_bundle,
                   "users": {"root": {"user": "root", "password": ""}},
                   "aws": {"endpoint_url": aws_env["AWS_ENDPOINT_URL"], "region": "us-east-1",
                           "access_key_id": aws_env["AWS_ACCESS_KEY_ID"],
                           "secret_access_key": aws_env["AWS_SECRET_ACCESS_KEY"],
                           "approver_role_arn": f"arn:aws:iam::{accounts[name]}:role/envsync-{name}-approver"}}
            for name, db in chain.items()}
    (tmp_path / "envs.json").write_text(json.dumps(envs))
    env = {**os.environ, "ENVSYNC_LOCAL_DIR": str(tmp_path)}
    # dev's bucket in dev's account, encrypted with dev's key, as the sync stack makes it
    base = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    creds = base.client("sts").assume_role(RoleArn="arn:aws:iam::111111111111:role/envsync-deployer",
                                           RoleSessionName="test")["Credentials"]
    dev_aws = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name="us-east-1")
    key = dev_aws.client("kms").create_key()["KeyMetadata"]["Arn"]
    s3, bucket = dev_aws.client("s3"), "envsync-dev-migrations-111111111111"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "BucketKeyEnabled": True}]})
    scripts = {"V1__currency.sql": "CREATE TABLE currency (code CHAR(3) PRIMARY KEY);\n",
               "V2__rate.sql": "CREATE TABLE rate (code CHAR(3) PRIMARY KEY, value DECIMAL(12,6));\n"}
    for name, body in scripts.items():
        s3.put_object(Bucket=bucket, Key=f"migrations/{name}", Body=body.encode())
    s3.put_object(Bucket=bucket, Key="migrations/notes/README.txt", Body=b"not a script")

    plan = envsync("plan", "--env", "dev", env=env)
    assert plan.returncode == 1, plan.stdout + plan.stderr  # pending work
    assert "-- V1__currency.sql (checksum" in plan.stdout and "-- V2__rate.sql (checksum" in plan.stdout
    assert "CREATE TABLE rate (code CHAR(3) PRIMARY KEY, value DECIMAL(12,6));" in plan.stdout
    valid = envsync("validate", "--env", "dev", env=env)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert valid.stdout.strip() == (f"valid against s3://{bucket}/migrations/: pending V1__currency.sql, "
                                    "V2__rate.sql"), valid.stdout

    # dev applies V1 (from the same bucket, through a directory here); staging's plan reads dev's history
    folder = str(write_scripts(tmp_path / "s", {"V1__currency.sql": scripts["V1__currency.sql"]}))
    assert envsync("apply", "--env", "dev", "--scripts", folder, env=env).returncode == 0
    staging = envsync("plan", "--env", "staging", env=env)
    assert staging.returncode == 1, staging.stdout + staging.stderr
    assert "-- V1__currency.sql (checksum" in staging.stdout and "V2__rate.sql" not in staging.stdout
    dev_json = json.loads(envsync("--json", "validate", "--env", "dev", env=env).stdout)
    assert (dev_json["valid"], dev_json["pending"]) == (True, ["V2__rate.sql"])
    assert "valid against dev history: pending V1__currency.sql" in envsync("validate", "--env", "staging",
                                                                             env=env).stdout

    # a bucket the role cannot read: one line naming it, no traceback
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"migrations/{n}"} for n in scripts]
                                             + [{"Key": "migrations/notes/README.txt"}]})
    s3.delete_bucket(Bucket=bucket)
    gone = envsync("plan", "--env", "dev", env=env)
    assert gone.returncode == 2 and f"cannot read scripts from s3://{bucket}/migrations/" in gone.stderr, gone.stderr
    assert "Traceback" not in gone.stderr


def test_status_says_what_history_it_could_not_read_and_where_never_the_drivers_text(
    chain: Dict[str, EnvDB], tmp_path: Path,
) -> None:
    dev, staging = chain["dev"], chain["staging"]
    address = f"root@{dev.host}:{dev.port}/{dev.database}"
    # no history table yet: said, not an empty table alone
    fresh = envsync("status", "--target", dev.url)
    assert fresh.returncode == 0, fresh.stderr
    assert f"no envsync_schema_history in {address} yet: nothing has been applied to {dev.database}" in fresh.stdout
    # a table of that name that is not envsync's history: what, where, the error's code and name
    dev.query("CREATE TABLE envsync_schema_history (version VARCHAR(10), note VARCHAR(40))")
    dev.query("INSERT INTO envsync_schema_history VALUES ('1', 'secret row value')")
    broken = envsync("status", "--target", dev.url)
    assert broken.returncode == 2, broken.stdout
    assert broken.stderr.strip() == (f"envsync: cannot read {dev.database}'s migration history (envsync_schema_history "
                                     f"in {address}): OperationalError: MySQL error 1054 (BAD_FIELD_ERROR)")
    # the upstream's history is what is unreadable: named as the source of the target's scripts
    through = envsync("status", "--target", staging.url, "--upstream", dev.url)
    assert through.returncode == 2, through.stdout
    assert through.stderr.strip() == (f"envsync: cannot read the scripts of {staging.database}: {dev.database} history "
                                      f"in {address}: OperationalError: MySQL error 1054 (BAD_FIELD_ERROR)")
    assert "Unknown column" not in broken.stderr + through.stderr and "Traceback" not in through.stderr
    dev.query("DROP TABLE envsync_schema_history")
    # an upstream that does not answer: where, once
    down = envsync("status", "--target", staging.url, "--upstream", "mysql://root:@127.0.0.1:1/app")
    assert down.returncode == 2, down.stdout
    assert down.stderr.startswith("envsync: cannot connect to root@127.0.0.1:1/app"), down.stderr
    # the env's runs cannot be read (its AWS endpoint does not answer): the history is shown, then one line
    envs = {"dev": {"account_id": "111111111111", "upstream": None, "host": dev.host, "port": dev.port,
                    "database": dev.database, "ca_bundle": dev.ca_bundle,
                    "users": {"root": {"user": "root", "password": ""}},
                    "aws": {"endpoint_url": "http://127.0.0.1:1", "region": "us-east-1", "access_key_id": "testing",
                            "secret_access_key": "testing",
                            "approver_role_arn": "arn:aws:iam::111111111111:role/envsync-dev-approver"}}}
    (tmp_path / "envs.json").write_text(json.dumps(envs))
    unreachable = envsync("status", "--env", "dev", env={**os.environ, "ENVSYNC_LOCAL_DIR": str(tmp_path)})
    assert unreachable.returncode == 2, unreachable.stdout + unreachable.stderr
    assert "version  script  state" in unreachable.stdout and "Traceback" not in unreachable.stderr
    assert ("runs of envsync-dev-sync: could not read them (EndpointConnectionError (http://127.0.0.1:1/"
            in unreachable.stdout), unreachable.stdout
