"""Fail fast where waiting cannot help (issue 16 item 6a): a CA bundle that does not trust the
server, or a proxy that is not there, ends `dvc push`/`pull` at once with one message naming the
variable to fix, not after minutes of backoff. The real `dvc` against the emulator."""

from __future__ import annotations

import datetime
import os
import socket
import time
from pathlib import Path

import pytest

from tests.helpers.emulator import EmulatorProcess
from tests.helpers.fault_matrix import assert_clean_message, error_lines
from tests.integration.plugin.cli import dvc, make_repo

# Fail fast: a few Python starts and one refused request, not the backoff (was 300 s).
FAST_S = 30.0
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")


def _project(tmp_path: Path, emulator: EmulatorProcess) -> tuple[Path, dict[str, str]]:
    env = emulator.isolated_env(tmp_path / "home", emulator.token())
    for name in PROXY_VARS:
        env.pop(name, None)
    repo = make_repo(tmp_path / "repo", env)
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox://fail-fast-{os.urandom(4).hex()}")
    for i in range(3):
        (repo / f"f{i}.bin").write_bytes(os.urandom(500 + i))
    dvc(repo, env, "add", "-q", "f0.bin", "f1.bin", "f2.bin")
    return repo, env


def _other_ca(path: Path) -> Path:
    """A CA bundle holding one CA of its own (as the emulator makes its own): not the emulator's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "some other CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _push(repo: Path, env: dict[str, str]) -> tuple[str, float, int]:
    started = time.monotonic()
    proc = dvc(repo, env, "push", check=False)
    return proc.stdout + proc.stderr, time.monotonic() - started, proc.returncode


def test_a_ca_bundle_that_does_not_trust_the_server_fails_at_once(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    repo, env = _project(tmp_path, emulator)
    other = _other_ca(tmp_path / "other-ca.pem")
    env["REQUESTS_CA_BUNDLE"] = str(other)

    output, seconds, code = _push(repo, env)

    assert code != 0, output
    assert seconds < FAST_S, output
    errors = assert_clean_message(output, expect=("REQUESTS_CA_BUNDLE",), max_errors=2)
    assert "could not be verified" in errors[0], output
    assert str(other) in errors[0]
    assert "waiting" not in output  # no backoff at all


@pytest.mark.parametrize("host", ["127.0.0.1", "no-such-proxy.invalid"])
def test_a_proxy_that_refuses_or_does_not_exist_fails_at_once(
    tmp_path: Path, emulator: EmulatorProcess, host: str
) -> None:
    repo, env = _project(tmp_path, emulator)
    proxy = f"http://user:hunter2@{host}:{_refused_port()}"
    env["HTTPS_PROXY"] = proxy

    output, seconds, code = _push(repo, env)

    assert code != 0, output
    assert seconds < FAST_S, output
    errors = assert_clean_message(output, ("hunter2",), expect=("HTTPS_PROXY", "NO_PROXY"))
    assert len(errors) <= 2, output
    assert f"through the proxy http://{host}:" in errors[0], output
    assert "waiting" not in output


def test_a_pull_through_a_refusing_proxy_fails_at_once(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    repo, env = _project(tmp_path, emulator)
    dvc(repo, env, "push", "-q")
    cache = repo / ".dvc" / "cache"
    for path in sorted(cache.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    env["HTTPS_PROXY"] = f"http://127.0.0.1:{_refused_port()}"

    started = time.monotonic()
    proc = dvc(repo, env, "pull", check=False)
    output = proc.stdout + proc.stderr

    assert proc.returncode != 0, output
    assert time.monotonic() - started < FAST_S, output
    assert_clean_message(output, expect=("HTTPS_PROXY",), max_errors=2)
    assert len(error_lines(output)) >= 1
