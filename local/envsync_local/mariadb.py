"""Local MariaDB servers that stand in for the Aurora clusters (one per env).

Each instance has its own datadir, port, socket and pid file under a state directory, is
created with `mariadb-install-db` and served by `mariadbd`, and speaks TLS with a locally
generated CA and `require_secure_transport=ON`, as the Aurora parameter group demands, so the
engine connects to it exactly as it connects to Aurora.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from envsync_local.process import (
    failed_to_bind,
    is_alive,
    log_size,
    logged_since,
    terminate,
    wait_until_free,
)

SOCKET_PATH_MAX = 107  # sun_path of a Unix socket address, less its NUL
INSTALL_HINT = (
    "MariaDB server binaries not found (need mariadbd and mariadb-install-db): "
    "install them with `apt-get install mariadb-server` (Debian/Ubuntu)."
)


class MariaDBError(RuntimeError):
    """A local MariaDB stand-in could not be created, started or reached."""


def find_binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise MariaDBError(INSTALL_HINT)


# How long a start waits for a just-stopped server's port, and how often it tries to bind.
PORT_RELEASE_SECONDS = 5.0
BIND_ATTEMPTS = 3


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The writers listen on 127.0.0.1, a cluster's replica on 127.0.0.2 (its reader endpoint).
SERVER_NAMES = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2\n"
REPLICA_HOST = "127.0.0.2"


def ensure_tls_material(tls_dir: Path) -> Path:
    """Create (once) a local CA and a server certificate for the stand-ins' addresses.

    Returns the CA bundle path that clients verify against.
    """
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = tls_dir / "ca-key.pem", tls_dir / "ca.pem"
    key, csr, cert = tls_dir / "server-key.pem", tls_dir / "server.csr", tls_dir / "server-cert.pem"
    ext = tls_dir / "san.ext"
    names_current = ext.exists() and ext.read_text() == SERVER_NAMES
    if cert.exists() and ca_cert.exists() and names_current:
        return ca_cert
    openssl = shutil.which("openssl")
    if not openssl:
        raise MariaDBError("openssl not found: install it with `apt-get install openssl`.")
    ext.write_text(SERVER_NAMES)
    steps = [] if ca_cert.exists() and ca_key.exists() else [
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
         "-subj", "/CN=envsync local CA", "-keyout", str(ca_key), "-out", str(ca_cert)]]
    steps += [
        [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(csr)],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "3650", "-extfile", str(ext), "-out", str(cert)],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise MariaDBError(f"openssl failed ({' '.join(step[:3])}): {result.stderr.strip()}")
    return ca_cert


@dataclass
class MariaDBInstance:
    """One mariadbd process with its own datadir and port."""

    name: str
    port: int
    base_dir: Path
    tls_dir: Optional[Path] = None
    host: str = "127.0.0.1"
    # Set: the server writes a binary log under this server id (a replication source), or,
    # with read_only, is a replica (it replicates once told its source, see cfn_models.replica).
    server_id: Optional[int] = None
    read_only: bool = False
    # InnoDB's buffer pool: the stand-ins' tables are small; a benchmark sizes it to hold its
    # tables, as Aurora's buffer pool (3/4 of the instance's memory) holds reference tables.
    buffer_pool: str = "256M"

    @property
    def datadir(self) -> Path:
        return self.base_dir / "data"

    @property
    def tmpdir(self) -> Path:
        """Private temp dir: servers sharing /tmp collide on temporary table names."""
        return self.base_dir / "tmp"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "mariadbd.pid"

    @property
    def socket_path(self) -> Path:
        """In the state directory, or, where that path is longer than a Unix socket's 107
        characters (deep test or CI directories), in the temp dir under a name derived from it."""
        beside = self.base_dir / "mariadbd.sock"
        if len(str(beside)) <= SOCKET_PATH_MAX:
            return beside
        digest = hashlib.sha256(str(beside.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"envsync-mariadbd-{digest}.sock"

    @property
    def error_log(self) -> Path:
        return self.base_dir / "error.log"

    @property
    def ca_bundle(self) -> Optional[Path]:
        return self.tls_dir / "ca.pem" if self.tls_dir else None

    def pid(self) -> Optional[int]:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if is_alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None and port_is_open(self.host, self.port)

    def _install(self) -> None:
        if (self.datadir / "mysql").is_dir():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [find_binary("mariadb-install-db"), "--no-defaults", f"--datadir={self.datadir}",
             f"--tmpdir={self.tmpdir}",
             "--auth-root-authentication-method=normal", "--skip-test-db",
             f"--user={getpass.getuser()}"],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(self.datadir, ignore_errors=True)
            raise MariaDBError(
                f"mariadb-install-db failed for {self.name} in {self.datadir}: "
                f"{result.stderr.strip()[-500:]}"
            )

    def start(self, timeout: float = 30.0) -> None:
        """Create the datadir if needed and start mariadbd; idempotent."""
        if self.is_running():
            return
        mariadbd = find_binary("mariadbd")
        if not wait_until_free(self.host, self.port, PORT_RELEASE_SECONDS):  # a server still exiting
            raise MariaDBError(
                f"port {self.port} for the {self.name} MariaDB stand-in is already taken by "
                "another process; pick another port."
            )
        self._install()
        args = [
            mariadbd, "--no-defaults", f"--datadir={self.datadir}", f"--tmpdir={self.tmpdir}",
            f"--port={self.port}",
            f"--bind-address={self.host}", f"--socket={self.socket_path}",
            f"--pid-file={self.pid_file}", f"--log-error={self.error_log}",
            f"--user={getpass.getuser()}", "--skip-name-resolve",
            f"--innodb-buffer-pool-size={self.buffer_pool}", "--innodb-log-file-size=256M",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--max-connections=200",
        ]
        if self.server_id is not None:
            args += [
                f"--server-id={self.server_id}", "--log-bin=mariadb-bin", "--binlog-format=ROW",
                "--relay-log=relay-bin",
                # Aurora's parameter groups allow routines and triggers under binary logging.
                "--log-bin-trust-function-creators=ON",
            ]
        if self.read_only:
            args.append("--read-only=ON")
        if self.tls_dir:
            ensure_tls_material(self.tls_dir)
            args += [
                f"--ssl-ca={self.tls_dir / 'ca.pem'}",
                f"--ssl-cert={self.tls_dir / 'server-cert.pem'}",
                f"--ssl-key={self.tls_dir / 'server-key.pem'}",
                "--require-secure-transport=ON",
            ]
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # The port was free a moment ago; another process may take it before mariadbd binds it.
        for attempt in range(1, BIND_ATTEMPTS + 1):
            logged_from = log_size(self.error_log)
            with open(self.base_dir / "mariadbd.out", "ab") as out:
                process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)
            if self._listening(process, timeout):
                return
            if attempt < BIND_ATTEMPTS and failed_to_bind(logged_since(self.error_log, logged_from)):
                wait_until_free(self.host, self.port, PORT_RELEASE_SECONDS)
                continue
            raise MariaDBError(
                f"mariadbd for {self.name} exited with {process.returncode}; "
                f"see {self.error_log}"
            )

    def _listening(self, process: subprocess.Popen, timeout: float) -> bool:
        """True once mariadbd listens, False when it exited; killed and an error after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            if port_is_open(self.host, self.port) and self.pid_file.exists():
                return True
            time.sleep(0.1)
        process.kill()
        raise MariaDBError(f"mariadbd for {self.name} did not listen on {self.port} in {timeout}s")

    def stop(self, timeout: float = 30.0, hard: bool = False) -> None:
        """Stop the mariadbd this instance started (by its pid file); idempotent."""
        pid = self.pid()
        if pid is not None:
            terminate(pid, timeout, hard=hard)
            wait_until_free(self.host, self.port, PORT_RELEASE_SECONDS)  # a following start binds it

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
