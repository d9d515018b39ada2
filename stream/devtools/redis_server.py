"""A local ``redis-server`` for tests and benchmarks: free port, password, clean stop.

``make test`` installs the distribution's ``redis-server`` when it is missing
(``scripts/provision.sh``); this starts it on loopback with a password (so the password path
is always exercised) and an append-only file synced on every write, so it can be stopped and
started on the same port with its data, which is how the tests stage an outage.

Like the Kafka launcher (:mod:`stream.devtools.brokers`), the server cannot outlive the process
that started it: it is tied to it with the parent-death signal, and its directory is removed
by :meth:`RedisServer.close`, at the latest when the starting Python exits, or by the next
launcher when a SIGKILL left no chance to.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import uuid

from stream.devtools.brokers import (
    BrokerError,
    free_port,
    scratch_dir,
    tied_to_launcher,
    wait_for_port,
)


class RedisServer:
    """``tls=True`` serves TLS only, with a self-signed certificate for 127.0.0.1 made by the
    ``openssl`` command; :attr:`url` is then a ``rediss://`` URL that trusts it.

    :meth:`stop` keeps the data (a later :meth:`start` brings it back, as after an outage);
    :meth:`close`, or leaving the ``with`` block, also removes the directory.
    """

    def __init__(self, tls: bool = False) -> None:
        self.port = free_port()
        self.password = uuid.uuid4().hex
        self.workdir = scratch_dir("redis")
        self.process: subprocess.Popen | None = None
        self.tls = tls
        # A caller that only stop()s (to restart later) must not leave the directory behind.
        atexit.register(self.close)

    @property
    def url(self) -> str:
        if self.tls:
            ca = self.workdir / "cert.pem"
            return f"rediss://:{self.password}@127.0.0.1:{self.port}/0?ssl_ca_certs={ca}"
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def _tls_options(self) -> list[str]:
        cert, key = self.workdir / "cert.pem", self.workdir / "key.pem"
        if not cert.exists():
            if shutil.which("openssl") is None:
                raise BrokerError("the Redis TLS test needs the openssl command (make test "
                                  "installs it: scripts/provision.sh)")  # fmt: skip
            made = subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(key), "-out", str(cert)],
                capture_output=True, timeout=60, check=False, **tied_to_launcher(),
            )  # fmt: skip
            if made.returncode != 0:
                raise BrokerError(f"openssl could not make a test certificate: {made.stderr!r}")
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
                "--tls-auth-clients", "no"]  # fmt: skip

    def start(self, timeout: float = 20.0) -> None:
        """Start (again, after :meth:`stop`, with the same port, password and data)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise BrokerError(
                "redis-server is not installed: `make test` installs it (scripts/provision.sh), "
                "or apt-get install redis-server"
            )
        listen = self._tls_options() if self.tls else ["--port", str(self.port)]
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [binary, *listen, "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir),
                 "--requirepass", self.password],
                stdout=log, stderr=subprocess.STDOUT, **tied_to_launcher(),
            )  # fmt: skip
        try:
            wait_for_port(self.port, timeout, self.process)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (redis-server flushes its append-only file), SIGKILL after ``timeout``."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        """Stop the server and remove its directory (data, certificate, log)."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
