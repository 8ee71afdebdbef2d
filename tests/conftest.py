"""Shared fixtures: real MariaDB servers and a real moto server, started by the suite itself."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

import pymysql
import pytest

from envsync_local.mariadb import MariaDBInstance, free_port, port_is_open
from envsync_local.moto_server import MotoServer
from envsync_local.moto_server import start as start_moto
from tests.chain import chain

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MACHINE_DB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
ENV_NAMES = chain()  # config/config.yaml envs:, upstream first


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def machine_mariadb() -> Dict[str, object]:
    """The machine's MariaDB on 127.0.0.1:3306 (root, empty password); .ci/run starts it."""
    if not port_is_open("127.0.0.1", 3306):
        pytest.fail("MariaDB is not listening on 127.0.0.1:3306 (start it: see .ci/run)")
    return dict(MACHINE_DB)


@pytest.fixture
def scratch_schema(machine_mariadb: Dict[str, object]) -> Iterator[str]:
    """A fresh, uniquely named schema on the machine's server, dropped afterwards."""
    name = f"envsync_t_{uuid.uuid4().hex[:10]}"
    connection = pymysql.connect(**machine_mariadb, autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


@pytest.fixture(scope="session")
def mariadb_instances(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Dict[str, MariaDBInstance]]:
    """Three MariaDB servers (dev, staging, prod) on their own ports, TLS required, as in AWS."""
    base = tmp_path_factory.mktemp("mariadb")
    instances = {
        name: MariaDBInstance(
            name=name, port=free_port(), base_dir=base / name, tls_dir=base / "tls"
        )
        for name in ENV_NAMES
    }
    try:
        for instance in instances.values():
            instance.start()
        yield instances
    finally:
        for instance in instances.values():
            instance.stop()


def root_connect(
    instance: MariaDBInstance, database: str = "", **extra: object
) -> pymysql.Connection:
    """Root connection to a suite-started instance, over TLS verified with the local CA."""
    return pymysql.connect(
        host=instance.host, port=instance.port, user="root", password="", database=database or None,
        ssl={"ca": str(instance.ca_bundle)} if instance.ca_bundle else None, **extra,
    )


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server (own venv, envsync's CloudFormation models) for the whole session."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = start_moto(free_port(), log)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Dict[str, str]:
    """Point boto3 in this process at the moto server; also usable as a subprocess env."""
    env = moto_server.aws_env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return {**os.environ, **env}


# ---- rendered templates (Sceptre's own renderer, every stack of every env) -----------------

def render_project(project: Path = PROJECT_ROOT) -> Dict[str, str]:
    """`sceptre generate` of every stack of every env, keyed 'env/stack' (e.g. 'prod/network')."""
    # Imported here: it needs Sceptre, which the Lambda runtimes' venvs (make test-engine) lack.
    from envsync_tools.proof import project as proof_project

    return proof_project.render_project(project)


def parse_templates(bodies: Dict[str, str]) -> Dict[str, dict]:
    from envsync_tools.proof import project as proof_project

    return proof_project.parse_templates(bodies)


@pytest.fixture(scope="session")
def rendered_bodies() -> Dict[str, str]:
    return render_project()


@pytest.fixture(scope="session")
def rendered_templates(rendered_bodies: Dict[str, str]) -> Dict[str, dict]:
    return parse_templates(rendered_bodies)


# ---- the whole project launched offline (what README command 1 does) -----------------------

# Fixtures that start servers, or need the machine's: a test using one is not unit-level.
STANDIN_FIXTURES = frozenset({"mariadb_instances", "machine_mariadb", "moto_server", "models_server", "launched"})


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads xdist_group into the node ids
def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Every test built on the `launched` project carries the `launched` marker, so `-m "not
    launched"` leaves out exactly what needs launched stacks; every test that uses a MariaDB or
    moto server (through a fixture here, or marked so because it starts one itself) carries
    `standins`, which `make test-fast` leaves out too."""
    for item in items:
        if STANDIN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.standins)
        # Under `pytest -n N --dist loadgroup` (make test): every test on the launched project runs
        # in one worker, in file order (later e2e files build on earlier ones' script versions) and
        # with one launch; any other module's tests stay together, so its fixtures start once.
        uses_world = "launched" in getattr(item, "fixturenames", ())
        item.add_marker(pytest.mark.xdist_group("launched-project" if uses_world else item.nodeid.split("::")[0]))
    unmarked = [item.nodeid for item in items
                if "launched" in getattr(item, "fixturenames", ()) and item.get_closest_marker("launched") is None]
    if unmarked:
        raise pytest.UsageError("mark these @pytest.mark.launched (they use the launched project): "
                                + ", ".join(unmarked))


@pytest.fixture(scope="session")
def launched(tmp_path_factory: pytest.TempPathFactory):
    """Every env launched with real `sceptre launch` against fresh stand-ins on free ports.

    Launched as `envsync-local up` launches (upstream first, then the accepters' return routes);
    `stacks_before_prod` records what each account held before prod was launched, so tests can
    prove prod's launch stayed in prod.
    """
    from envsync_local.cli import LocalStack, env_session, launch_all
    from envsync_sceptre.config.envconfig import load_envs

    envs = load_envs(PROJECT_ROOT / "config")
    local = LocalStack(tmp_path_factory.mktemp("local"), envs, moto_port=free_port(),
                       db_ports={name: free_port() for name in envs})
    local.start()

    def stack_names() -> Dict[str, set]:
        return {
            name: {s["StackName"] for s in env_session(local, env).client(
                "cloudformation", endpoint_url=local.moto.endpoint_url).describe_stacks()["Stacks"]}
            for name, env in envs.items()
        }

    launch_logs: Dict[str, str] = {}
    snapshot: Dict[str, set] = {}
    try:
        upstream_of_prod = [name for name in local.order if not envs[name].is_prod]
        launch_logs.update(launch_all(local, upstream_of_prod, capture=True))
        snapshot = stack_names()
        launch_logs.update(launch_all(local, [name for name in local.order if envs[name].is_prod], capture=True))
        yield LaunchedProject(local, envs, snapshot, launch_logs)
    finally:
        local.stop()


class LaunchedProject:
    """What the `launched` fixture hands to tests."""

    def __init__(self, local, envs, stacks_before_prod, launch_logs):
        self.local = local
        self.envs = envs
        self.stacks_before_prod = stacks_before_prod
        self.launch_logs = launch_logs

    def session(self, env: str):
        from envsync_local.cli import env_session

        return env_session(self.local, self.envs[env])

    def client(self, env: str, service: str):
        return self.session(env).client(service, endpoint_url=self.local.moto.endpoint_url)

    def outputs(self, env: str, stack: str) -> Dict[str, str]:
        described = self.client(env, "cloudformation").describe_stacks(
            StackName=f"envsync-{env}-{stack}")["Stacks"][0]
        return {item["OutputKey"]: item["OutputValue"] for item in described.get("Outputs", [])}
