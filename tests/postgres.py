"""A real PostgreSQL server for the tests: one per pytest session, one fresh database per test.

Fixtures (registered in ``tests/conftest.py``):

* ``postgres_server`` (session): starts the server on the first test that needs it and stops
  it, and removes its files, at the end of the session.
* ``postgres_url`` (function): ``postgresql://trainlab:PASSWORD@127.0.0.1:PORT/t_...``, a new
  empty database made by ``CREATE DATABASE`` for the test, owned by the ordinary role
  ``trainlab`` (not a superuser), dropped (``WITH (FORCE)``) after the test.
* ``postgres_admin_url`` (function): the superuser's URL to the maintenance database
  ``postgres``, for what a test must do as the administrator, e.g. ``create_user``.

Helpers: ``create_user(admin_url, name, password)`` (a login role with that password, its URL
back), ``url_with(url, user=..., password=..., database=...)`` (the same server, other
credentials, e.g. a wrong password: authentication on TCP is ``scram-sha-256`` for everyone).

How the server is had, and why: the binaries of Debian's ``postgresql`` package
(``/usr/lib/postgresql/<version>/bin``; ``tools/install-postgres.sh``, called by ``make test``,
installs them with apt when missing), run by this module as a throwaway cluster: ``initdb``
into a temporary directory, then ``postgres`` on 127.0.0.1 and a free port (TCP only, no Unix
socket), durability off (``fsync``, ``full_page_writes``; the data is thrown
away). ``initdb`` and ``postgres`` refuse to run as root, so as root the server runs as the
unprivileged account ``postgres`` (or ``nobody``; ``$TRAINLAB_PG_OS_USER`` chooses), through
``subprocess``'s ``user=``/``group=``; the directory is given to that account. The server is
the test process's child and gets SIGTERM if the test process dies (``PR_SET_PDEATHSIG``), so
a killed pytest leaves no server behind (only its directory, /tmp/trainlab-pg-*, about 46 MB).
On a shared 2-core machine the start (initdb, server up, test role) takes about 1.7 s, once per
session; a database's create about 0.1 s, its drop 0.02 s.

The URLs are libpq's (``postgresql://``); SQLAlchemy reads that scheme as psycopg2, so a store
built on SQLAlchemy names psycopg 3 as ``postgresql+psycopg://``.

The alternatives were tried as root on this Debian 12, Python 3.11 machine: the ``pgserver``
wheel (PostgreSQL 16 bundled, 34 MB) runs, but as root it creates a system user with
``useradd`` and opens the directories above its data directory to that user, and it
listens on a Unix socket only with ``trust`` authentication (no TCP, no passwords to get
wrong); ``pytest-postgresql``'s ``postgresql_proc`` calls ``pg_ctl initdb`` as the current user,
which fails as root ("initdb: cannot be run as root"). Debian's packages need apt once, but
then nothing from PyPI, and they are the server a deployment would run.

When no server can be had (no binaries, no psycopg, root with no unprivileged account) the
tests that use these fixtures skip, and the reason says what is missing. With
``TRAINLAB_REQUIRE_POSTGRES=1`` they fail instead (for a CI that must run them). A server that
is there but does not start is an error, with the end of its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

HOST = "127.0.0.1"
ADMIN_USER = "trainlab_admin"
TEST_USER = "trainlab"
START_TIMEOUT_S = 120.0  # a shared, slow machine; the start normally takes about a second
STOP_TIMEOUT_S = 30.0
INSTALL_HINT = (
    "run tools/install-postgres.sh as root (Debian's postgresql), or install PostgreSQL and "
    "set TRAINLAB_PG_BINDIR to the directory that holds initdb and postgres"
)


def find_bindir() -> Path | None:
    """The directory with PostgreSQL's ``initdb`` and ``postgres``, or None.

    ``$TRAINLAB_PG_BINDIR`` first, then Debian's ``/usr/lib/postgresql/<version>/bin`` (the
    newest version), then ``initdb`` on PATH (its real directory, symlinks followed).
    """
    candidates: list[Path] = []
    if os.environ.get("TRAINLAB_PG_BINDIR"):
        candidates.append(Path(os.environ["TRAINLAB_PG_BINDIR"]))
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
        reverse=True,
    )
    candidates.extend(debian)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres")):
            return bindir
    return None


def server_account() -> tuple[int, int] | None:
    """The (uid, gid) to run the server as: None when not root (run as ourselves).

    Raises LookupError when root and no unprivileged account exists.
    """
    if os.geteuid() != 0:
        return None
    names = [os.environ.get("TRAINLAB_PG_OS_USER") or "postgres", "nobody"]
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return entry.pw_uid, entry.pw_gid
    raise LookupError(f"no unprivileged account among {names}")


def missing_prerequisite() -> str | None:
    """Why no server can be had here (a skip reason naming what is missing), or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg 3 not installed: pip install 'psycopg[binary]' (the postgres extra)"
    if find_bindir() is None:
        return f"PostgreSQL server binaries (initdb, postgres) not found: {INSTALL_HINT}"
    try:
        server_account()
    except LookupError as err:
        return f"running as root, and initdb refuses root: {err} to run the server as"
    return None


def url_with(
    url: str, *, user: str | None = None, password: str | None = None, database: str | None = None
) -> str:
    """``url`` with its user, password or database replaced (the same host and port).

    A user given without a password drops the old password.
    """
    parts = urlsplit(url)
    old_user = unquote(parts.username or "")
    old_password = unquote(parts.password) if parts.password is not None else None
    if user is not None and password is None:
        old_password = None
    user = old_user if user is None else user
    password = old_password if password is None else password
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    netloc = f"{auth}@{parts.hostname}:{parts.port}"
    path = parts.path if database is None else "/" + quote(database, safe="")
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def _admin_execute(admin_url: str, *statements) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def create_user(admin_url: str, name: str, password: str, *, database: str | None = None) -> str:
    """Make (or re-password) the login role ``name``; its URL with ``password`` comes back.

    The URL names ``database`` (default: the admin URL's). Any role may connect to any
    database (PUBLIC's CONNECT); ownership or grants are the test's to give. Roles are
    server-wide, so a name used by two tests gets the later password.
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        verb = "ALTER ROLE" if exists else "CREATE ROLE"
        conn.execute(
            sql.SQL(verb + " {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    return url_with(admin_url, user=name, password=password, database=database)


def create_database(admin_url: str, name: str, *, owner: str) -> str:
    """``CREATE DATABASE name OWNER owner``; the URL of the new database (admin credentials)."""
    from psycopg import sql

    _admin_execute(
        admin_url,
        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)),
    )
    return url_with(admin_url, database=name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop the database ``name``, ending any connection a test left open to it."""
    from psycopg import sql

    _admin_execute(
        admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    # runs in the child after the switch to the server's account (a uid change would clear it)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class PostgresServer:
    """One throwaway cluster: ``start()`` runs initdb and postgres, ``stop()`` removes both.

    ``admin_url`` is the superuser's URL, ``user``/``password`` the ordinary test role's.
    """

    def __init__(self, bindir: Path, account: tuple[int, int] | None) -> None:
        self.bindir = bindir
        self.account = account
        self.root = Path(tempfile.mkdtemp(prefix="trainlab-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.admin_password = secrets.token_urlsafe(16)
        self.user = TEST_USER
        self.password = secrets.token_urlsafe(16)
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        if account is not None:
            os.chown(self.root, *account)

    @property
    def admin_url(self) -> str:
        """The superuser's URL to the maintenance database ``postgres``."""
        return (
            f"postgresql://{ADMIN_USER}:{quote(self.admin_password, safe='')}"
            f"@{HOST}:{self.port}/postgres"
        )

    def _as_account(self) -> dict:
        if self.account is None:
            return {}
        uid, gid = self.account
        return {"user": uid, "group": gid, "extra_groups": []}

    def start(self) -> None:
        """initdb, then postgres on a free port; returns once it accepts the admin's login.

        Raises RuntimeError (with the end of the log) when initdb fails or the server does not
        come up within START_TIMEOUT_S.
        """
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        if self.account is not None:
            os.chown(pwfile, *self.account)
        initdb = subprocess.run(
            [
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", ADMIN_USER,
                f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                "--locale=C", "--no-sync",
            ],
            capture_output=True, text=True, **self._as_account(),
        )  # fmt: skip
        pwfile.unlink()
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed ({initdb.returncode}):\n{initdb.stderr[-2000:]}")
        for _attempt in range(5):  # a free port can be taken between probe and bind
            if self._launch(_free_port()):
                break
        else:
            raise RuntimeError(f"postgres could not bind a port:\n{self._log_tail()}")
        create_user(self.admin_url, self.user, self.password)

    def _launch(self, port: int) -> bool:
        """Start postgres on ``port``; False when the port was taken, True once it is up."""
        self.port = port
        options = {
            "listen_addresses": HOST, "port": str(port), "unix_socket_directories": "",
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
            "shared_buffers": "32MB", "max_connections": "100",
        }  # fmt: skip
        args = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for key, value in options.items():
            args += ["-c", f"{key}={value}"]
        with open(self.log, "wb") as log:  # each attempt's own log
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent, **self._as_account(),
            )  # fmt: skip
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "could not bind" in self._log_tail() or "in use" in self._log_tail():
                    return False
                raise RuntimeError(
                    f"postgres exited with {self.process.returncode}:\n{self._log_tail()}"
                )
            try:
                psycopg.connect(self.admin_url, connect_timeout=5).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        raise RuntimeError(f"postgres not up after {START_TIMEOUT_S:.0f} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Fast shutdown (SIGINT; SIGKILL after STOP_TIMEOUT_S), then remove the files."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _no_server(reason: str):
    if os.environ.get("TRAINLAB_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"TRAINLAB_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server (started on first use); skips when none can be had."""
    reason = missing_prerequisite()
    if reason is not None:
        _no_server(reason)
    server = PostgresServer(find_bindir(), server_account())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_admin_url(postgres_server) -> str:
    """The superuser's URL (TCP, scram password) to the maintenance database ``postgres``."""
    return postgres_server.admin_url


@contextlib.contextmanager
def fresh_database(server: PostgresServer):
    """A new empty database owned by the server's ordinary role, its URL; dropped on exit."""
    name = "t_" + secrets.token_hex(6)
    create_database(server.admin_url, name, owner=server.user)
    try:
        yield url_with(server.admin_url, user=server.user, password=server.password, database=name)
    finally:
        drop_database(server.admin_url, name)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database for this test, owned by the ordinary role; dropped after."""
    with fresh_database(postgres_server) as url:
        yield url
