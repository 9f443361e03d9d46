"""The gateway's transport, tried on a real ``syncbackbone serve --http`` process over real PostgreSQL:
HTTPS with ``--tls-cert/--tls-key`` (a self-signed certificate made here), and SYNC_ALLOWED_HOSTS.
"""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support import TEST_AUTH_SECRET, bearer, cli, user_env

from syncbackbone.infra.common.net import free_port, port_open


@pytest.fixture
def env(pg_dsn: str, namespace: str) -> dict[str, str]:
    """A user's environment: the test's PostgreSQL and namespace, and the tests' token secret."""
    return user_env(pg_dsn, namespace, SYNC_AUTH_SECRET=TEST_AUTH_SECRET)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (both in its SAN), and its key: PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file.write_bytes(pem)
    return cert_file, key_file


@contextmanager
def served(env: dict[str, str], *args: str) -> Iterator[int]:
    """``syncbackbone serve --http 127.0.0.1:PORT ARGS`` in a process of its own: its port; stopped after."""
    port = free_port()
    command = [sys.executable, "-m", "syncbackbone.infra.cli", "serve", "--http", f"127.0.0.1:{port}", *args]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stderr=log, text=True)
        try:
            deadline = time.monotonic() + 60
            while not port_open("127.0.0.1", port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"the server did not start: {log.read()}")
                time.sleep(0.1)
            yield port
        finally:
            proc.kill()
            proc.wait(10)


def test_serve_with_a_certificate_answers_https_to_clients_that_trust_it_and_only_to_them(
    env: dict[str, str], certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    trusting = ssl.create_default_context(cafile=str(cert))
    with served(env, "--tls-cert", str(cert), "--tls-key", str(key)) as port:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trusting, timeout=10) as client:
            assert client.get("/health").status_code == 200
            assert client.get("/sync/policies", headers=bearer()).status_code == 200
        with httpx.Client(base_url=f"https://localhost:{port}", verify=trusting, timeout=10) as client:
            assert client.get("/health").status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/health", timeout=10)  # the system's CAs do not know it
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)


def test_a_certificate_without_its_key_is_a_one_line_error(env: dict[str, str], certificate: tuple[Path, Path]) -> None:
    done = cli("serve", "--http", f"127.0.0.1:{free_port()}", "--tls-cert", str(certificate[0]), env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "--tls-cert and --tls-key go together" in done.stderr and "Traceback" not in done.stderr


def test_allowed_hosts_refuse_a_request_for_another_host_and_answer_their_own(env: dict[str, str]) -> None:
    with served({**env, "SYNC_ALLOWED_HOSTS": '["localhost"]'}) as port, httpx.Client(timeout=10) as client:
        url = f"http://127.0.0.1:{port}"
        assert client.get(f"{url}/health", headers={"Host": "evil.example"}).status_code == 400
        assert client.get(f"{url}/sync/policies", headers={"Host": "evil.example", **bearer()}).status_code == 400
        assert client.get(f"{url}/health", headers={"Host": "localhost"}).status_code == 200
        assert client.get(f"{url}/sync/policies", headers={"Host": f"localhost:{port}", **bearer()}).status_code == 200
