"""A throwaway PostgreSQL cluster for the tests (one per test session).

``PostgresServer.start()`` runs ``initdb`` in a fresh temporary folder and starts ``postgres`` on a free loopback
port, with its unix socket in that folder, ``trust`` authentication for the superuser ``postgres`` and durability
switched off (fast, nothing to keep). PostgreSQL refuses to run as root, so when the tests run as root the
binaries run as the ``postgres`` system user (``runuser``, else ``setpriv``) and the folder is handed to it.

The binaries are looked up on ``PATH`` and then in Debian's ``/usr/lib/postgresql/<version>/bin``;
``find_bindir()`` returns None when there are none (the fixtures then skip, saying why).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "postgres"
SYSTEM_USER = "postgres"


def find_bindir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None if PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent

    def version_key(path: str) -> float:
        try:
            return float(Path(path).parent.parent.name)
        except ValueError:
            return 0.0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version_key, reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class PostgresDatabase:
    """Where to reach one database: ``dsn`` for libpq clients, ``connect_kwargs`` for ``psycopg2.connect``."""

    host: str
    port: int
    user: str
    dbname: str
    socket_dir: str = ""

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"

    @property
    def url(self) -> str:
        """A SQLAlchemy-style URL (``postgresql://user@host:port/dbname``)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def connect_kwargs(self) -> dict:
        return {"host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname}


@dataclass
class PostgresServer:
    """One running cluster; ``database`` describes its maintenance database ``postgres``."""

    bindir: Path
    base_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aodncore-pg-")))
    port: int = 0
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def database(self) -> PostgresDatabase:
        return PostgresDatabase(self.host, self.port, SUPERUSER, "postgres", str(self.base_dir))

    # -- running the binaries ------------------------------------------------------------------------------------
    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", SYSTEM_USER, "--", *argv]
        return ["setpriv", f"--reuid={SYSTEM_USER}", f"--regid={SYSTEM_USER}", "--init-groups", "--", *argv]

    def _run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(
            self._as_server_user(argv), capture_output=True, text=True, timeout=timeout, cwd=self.base_dir,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr or result.stdout}")
        return result

    def _binary(self, name: str) -> str:
        return str(self.bindir / name)

    # -- life cycle ----------------------------------------------------------------------------------------------
    def start(self, attempts: int = 3) -> PostgresServer:
        """Create the cluster and start the server (retrying on another port if the chosen one was taken)."""
        if os.geteuid() == 0:
            account = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.base_dir, account.pw_uid, account.pw_gid)
        self._run([self._binary("initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
                   "-E", "UTF8", "--no-locale", "--no-sync"])
        last_error: Exception | None = None
        for _ in range(attempts):
            self.port = _free_port()
            options = (f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories={self.base_dir} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
            try:
                self._run([self._binary("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                           "-t", "60", "-o", options, "start"])
                return self
            except RuntimeError as error:
                last_error = error
        raise RuntimeError(f"could not start PostgreSQL: {last_error}; log: {self._log_tail()}")

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run([self._binary("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    # -- databases -----------------------------------------------------------------------------------------------
    def _psql(self, sql: str) -> None:
        subprocess.run(
            [self._binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.database.dsn, "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
        )

    def create_database(self, name: str | None = None) -> PostgresDatabase:
        """Create an empty database (a fresh name unless given) and describe it."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        self._psql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return PostgresDatabase(self.host, self.port, SUPERUSER, name, str(self.base_dir))

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still connected to it."""
        self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server() -> PostgresServer:
    """Start a cluster, or raise ``LookupError`` when PostgreSQL is not installed."""
    bindir = find_bindir()
    if bindir is None:
        raise LookupError("PostgreSQL binaries (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql")
    server = PostgresServer(bindir)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server
