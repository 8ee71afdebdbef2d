"""The stand-ins themselves: MariaDB instances with TLS required, moto with separate accounts."""

from __future__ import annotations

import boto3
import pymysql
import pytest

from envsync_local.mariadb import MariaDBError, MariaDBInstance, free_port
from tests.conftest import root_connect


def test_instances_require_tls_and_are_separate_servers(mariadb_instances):
    ports = {instance.port for instance in mariadb_instances.values()}
    assert len(ports) == 3
    for instance in mariadb_instances.values():
        with root_connect(instance) as connection, connection.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            assert cursor.fetchone()[1], "connection is not encrypted"
            cursor.execute("SELECT @@require_secure_transport, @@character_set_server")
            assert cursor.fetchone() == (1, "utf8mb4")
        with pytest.raises(pymysql.err.OperationalError):
            pymysql.connect(host=instance.host, port=instance.port, user="root", password="",
                            ssl_disabled=True)


def test_port_taken_is_a_clear_error(tmp_path, mariadb_instances):
    taken = mariadb_instances["dev"].port
    with pytest.raises(MariaDBError, match=f"port {taken}.*already taken"):
        MariaDBInstance(name="clash", port=taken, base_dir=tmp_path / "clash").start()


def test_a_port_is_free_once_its_listener_closed_and_its_time_wait_connections_do_not_hold_it():
    import socket

    from envsync_local.process import port_is_free

    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))
    assert not port_is_free("127.0.0.1", port)  # a server that has not exited yet
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first: its end of the connection is in TIME_WAIT
    listener.close()
    client.close()
    assert port_is_free("127.0.0.1", port)


@pytest.mark.standins  # starts moto servers
def test_moto_restarts_on_the_port_it_just_left_and_waits_for_a_port_still_held(tmp_path):
    """`make stop` then `make local`: the new server binds the port the old one left; a port
    still held by a listener that goes away a moment later is waited for, not an error."""
    import socket
    import threading

    from envsync_local.moto_server import start as start_moto

    port = free_port()
    first = start_moto(port, tmp_path / "moto.log", timeout=60)
    first.stop()
    second = start_moto(port, tmp_path / "moto.log", timeout=60)
    assert second.is_answering()
    second.stop()
    holder = socket.create_server(("127.0.0.1", port))
    threading.Timer(1.0, holder.close).start()
    third = start_moto(port, tmp_path / "moto.log", timeout=60)
    try:
        assert third.is_answering()
    finally:
        third.stop()


def test_missing_binaries_say_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("envsync_local.mariadb.os.access", lambda *_: False)
    with pytest.raises(MariaDBError, match="apt-get install mariadb-server"):
        MariaDBInstance(name="nobin", port=free_port(), base_dir=tmp_path / "x").start()


def test_moto_keeps_accounts_apart(aws_env):
    sts = boto3.client("sts")
    accounts = {}
    for account in ("111111111111", "222222222222"):
        credentials = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/envsync-deployer", RoleSessionName="test"
        )["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        assert session.client("sts").get_caller_identity()["Account"] == account
        accounts[account] = session.client("ec2")
    accounts["111111111111"].create_vpc(CidrBlock="10.99.0.0/16")
    cidrs = {
        account: {vpc["CidrBlock"] for vpc in ec2.describe_vpcs()["Vpcs"]}
        for account, ec2 in accounts.items()
    }
    assert "10.99.0.0/16" in cidrs["111111111111"]
    assert "10.99.0.0/16" not in cidrs["222222222222"]


def test_tool_chain_versions_are_the_pinned_ones():
    """sceptre 4.7 pins jsonschema<3.3, which would pull moto back to 4.x in a shared venv:
    the moto server runs from its own venv with moto 5."""
    import subprocess

    import sceptre

    from envsync_local.paths import moto_python

    moto_version = subprocess.run([moto_python(), "-c", "import moto; print(moto.__version__)"],
                                  capture_output=True, text=True, check=True).stdout.strip()
    assert moto_version == "5.2.5"
    assert sceptre.__version__ == "4.7.0"


def test_a_stand_in_that_cannot_start_leaves_none_of_its_start_running(tmp_path):
    """A port taken for the last server (prod's reader): `up` fails naming it, and the servers it
    had started before are stopped again, not left running unknown to `make stop`."""
    import socket

    from envsync_local.cli import LocalStack
    from envsync_local.paths import PROJECT_ROOT
    from envsync_sceptre.config.envconfig import load_envs

    envs = load_envs(PROJECT_ROOT / "config")
    local = LocalStack(tmp_path, envs, moto_port=free_port(), db_ports={name: free_port() for name in envs})
    last = local.servers[-1]
    with socket.create_server((last.host, last.port)):
        with pytest.raises(MariaDBError, match=f"port {last.port}.*already taken"):
            local.start()
    assert [db.name for db in local.servers if db.is_running()] == []
    assert not local.moto_running()
