"""A local ``redis-server`` for tests and benchmarks: free port, password, clean stop.

CI installs Debian's ``redis-server``; this starts it on loopback with a password (so the
password path is always exercised) and an append-only file synced on every write, so it can be
stopped and started on the same port with its data, which is how the tests stage an outage.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from stream.devtools.brokers import BrokerError, free_port, wait_for_port


class RedisServer:
    """``tls=True`` serves TLS only, with a self-signed certificate for 127.0.0.1 made by the
    ``openssl`` command; :attr:`url` is then a ``rediss://`` URL that trusts it."""

    def __init__(self, tls: bool = False) -> None:
        self.port = free_port()
        self.password = uuid.uuid4().hex
        self.workdir = Path(tempfile.mkdtemp(prefix="churnwatch-redis-"))
        self.process: subprocess.Popen | None = None
        self.tls = tls

    @property
    def url(self) -> str:
        if self.tls:
            ca = self.workdir / "cert.pem"
            return f"rediss://:{self.password}@127.0.0.1:{self.port}/0?ssl_ca_certs={ca}"
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def _tls_options(self) -> list[str]:
        cert, key = self.workdir / "cert.pem", self.workdir / "key.pem"
        if not cert.exists():
            made = subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(key), "-out", str(cert)],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
            if made.returncode != 0:
                raise BrokerError(f"openssl could not make a test certificate: {made.stderr!r}")
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
                "--tls-auth-clients", "no"]  # fmt: skip

    def start(self, timeout: float = 20.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise BrokerError("redis-server is not installed (apt-get install redis-server)")
        listen = self._tls_options() if self.tls else ["--port", str(self.port)]
        self.process = subprocess.Popen(
            [binary, *listen, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir),
             "--requirepass", self.password],
            stdout=(self.workdir / "redis.log").open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_for_port(self.port, timeout, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
