"""A throw-away PostgreSQL cluster for the tests: initdb and pg_ctl in a temporary directory.

Tests run as root in CI and in containers; PostgreSQL refuses to run as root, so the cluster then
belongs to the `postgres` user (runuser). It listens on a free local port and on a unix socket in
its own directory, with fsync off (its data is thrown away). Without the PostgreSQL binaries or
psycopg, `start_cluster` says why in `Unavailable`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class Unavailable(Exception):
    """PostgreSQL cannot be started here; the message says why."""


def _bindir() -> Path:
    candidates = []
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise Unavailable(
        "PostgreSQL is not installed (no initdb and pg_ctl: pg_config --bindir, /usr/lib/postgresql/*/bin)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A running cluster; `url(name)` is a database's SQLAlchemy URL, `create_database` makes one."""

    def __init__(self) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise Unavailable("psycopg 3 is not installed (pip install 'psycopg[binary]>=3.1')") from None
        self.bindir = _bindir()
        self.as_root = os.geteuid() == 0
        self.user = "postgres" if self.as_root else None
        self.root = Path(tempfile.mkdtemp(prefix="kb-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.password = "kb-test-password"
        self.role = "kb"
        self._counter = 0
        if self.as_root:
            if not shutil.which("runuser"):
                raise Unavailable("tests run as root and runuser is missing: PostgreSQL cannot run as root")
            shutil.chown(self.root, user="postgres")
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.as_root:
            shutil.chown(pwfile, user="postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.role,
            "--pwfile",
            str(pwfile),
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale",
            "C.UTF-8",
            "--no-sync",
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "-t", "60", "start"
        )

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            log = self.root / "log"
            if log.exists():
                detail += log.read_text(errors="replace")[-2000:]
            raise Unavailable(f"{tool} failed: {detail.strip()}") from None

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        return f"postgresql+psycopg://{self.role}:{password or self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh empty database; returns its URL."""
        import psycopg

        self._counter += 1
        name = f"kb_test_{self._counter}"
        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except Unavailable:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
