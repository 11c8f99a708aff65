"""What a run needs: throwaway databases, a private Redis, Rapport processes, seeded data.

Every child process and database is registered when it is made and removed in `finally`
blocks, and once more at exit, so an interrupted or failing run leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
from twilio.request_validator import RequestValidator

from bench.loadgen import Request, build_request

PG_ADMIN_URL = os.environ.get("RAPPORT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-key-that-is-long-enough-0123456789abcdef"
PASSWORD = "bench horse battery staple"
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "b" * 32
OUR_NUMBER = "+14155550100"
BIN = Path(sys.executable).parent
RAPPORT = str(BIN / "rapport")

_children: list[subprocess.Popen[bytes]] = []
# Set by `--profile DIR`: every Rapport process is sampled by py-spy into DIR.
PROFILE_DIR: Path | None = None
_databases: set[str] = set()


def raise_file_limit() -> int:
    """Sockets are files: lift the soft limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


async def wait_for_port(port: int, timeout: float = 30.0, process: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.exited():
            raise RuntimeError(f"{process.name} exited early; see {process.log}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout:.0f} s")


# --- child processes ---------------------------------------------------------------------------


class Child:
    """A process started by the bench: logged to a file, always stopped."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.args = args
        self.log = log
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, profile: bool = False) -> Child:
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                self.args, env=self.env, stdout=handle, stderr=subprocess.STDOUT
            )
        _children.append(self.process)
        if profile and PROFILE_DIR is not None:
            _profile(self)
        return self

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self) -> None:
        _stop(self.process)


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _profile(child: Child) -> None:
    """Sample the process with py-spy until it exits (collapsed stacks, one file each)."""
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    assert PROFILE_DIR is not None
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    out = PROFILE_DIR / f"{child.name}-{child.pid}.txt"
    with (PROFILE_DIR / "py-spy.log").open("ab") as handle:
        recorder = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(child.pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    _children.append(recorder)


def _cleanup_at_exit() -> None:
    for process in _children:
        _stop(process)
    for name in list(_databases):
        with contextlib.suppress(Exception):
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


atexit.register(_cleanup_at_exit)


def _on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_cleanly_on_sigterm() -> None:
    """`kill` (SIGTERM) unwinds like Ctrl+C, so children stop and databases are dropped."""
    signal.signal(signal.SIGTERM, _on_signal)


def rapport_env(database_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    values = {
        "env": "development",
        "database_url": database_url,
        "secret_key": SECRET,
        "storage_dir": str(workdir / "files"),
        "log_format": "json",
        "log_level": "INFO",
        "login_rate_limit": "10000/minute",
        "redis_prefix": f"rapport-bench-{uuid.uuid4().hex[:8]}",
    }
    values.update(extra)
    env.update({f"RAPPORT_{k.upper()}": v for k, v in values.items()})
    return env


@contextlib.asynccontextmanager
async def rapport(
    env: dict[str, str], workdir: Path, *, with_worker: bool = False, name: str = "web"
) -> AsyncIterator[tuple[Child, str]]:
    """`rapport serve` on a free port; yields the process and its base URL."""
    port = free_port()
    args = [RAPPORT, "serve", "--port", str(port)]
    if with_worker:
        args.append("--with-worker")
    child = Child(name, args, workdir / f"{name}.log", env).start(profile=True)
    try:
        await wait_for_port(port, process=child)
        await wait_healthy(f"http://127.0.0.1:{port}")
        yield child, f"http://127.0.0.1:{port}"
    finally:
        child.stop()


@contextlib.asynccontextmanager
async def rapport_worker(env: dict[str, str], workdir: Path) -> AsyncIterator[Child]:
    child = Child("worker", [RAPPORT, "worker"], workdir / "worker.log", env).start(profile=True)
    try:
        yield child
    finally:
        child.stop()


async def wait_healthy(base_url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{base_url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{base_url} never became healthy")


@contextlib.asynccontextmanager
async def python_server(
    module: str, workdir: Path, *args: str, name: str
) -> AsyncIterator[tuple[Child, int]]:
    """A baseline server (`python -m bench.<module>`) on a free port."""
    port = free_port()
    argv = [sys.executable, "-m", module, "--port", str(port), *args]
    child = Child(name, argv, workdir / f"{name}.log", dict(os.environ)).start()
    try:
        await wait_for_port(port, process=child)
        yield child, port
    finally:
        child.stop()


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A private redis-server on a free port (never the machine's shared one)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    child = Child(
        "redis",
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        workdir / "redis.log",
        dict(os.environ),
    ).start()
    try:
        deadline = time.monotonic() + 15
        while not reachable("127.0.0.1", port):
            if time.monotonic() > deadline or child.exited():
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        child.stop()


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# --- databases ---------------------------------------------------------------------------------


def pg_available() -> bool:
    return reachable("127.0.0.1", 5432)


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@contextlib.asynccontextmanager
async def pg_database(tag: str) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database, dropped afterwards."""
    from rapport.db.migrate import upgrade

    name = f"rapport_bench_{tag}_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    _databases.add(name)
    try:
        await upgrade(pg_url(name))
        yield pg_url(name)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _databases.discard(name)


async def stand_in_for_autovacuum(url: str) -> bool:
    """VACUUM the scenario's PostgreSQL database when its server runs without autovacuum (as
    these machines' does); True if it did. A Rapport deployment runs with autovacuum on: every
    message updates its contact and conversation, and without it their dead row versions pile
    up, so that each step would pay for the steps before it. Called between rate steps, on
    both sides alike (the raw script only inserts: it has nothing to clean)."""
    if not url.startswith("postgresql"):
        return False
    conn = await asyncpg.connect(url, timeout=10)
    try:
        if await conn.fetchval("SHOW autovacuum") == "on":
            return False
        await conn.execute("VACUUM")
        return True
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def sqlite_database(workdir: Path) -> AsyncIterator[str]:
    from rapport.db.migrate import upgrade

    url = f"sqlite:///{workdir / 'rapport.db'}"
    await upgrade(url)
    yield url


@contextlib.contextmanager
def workdir(tag: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"rapport-bench-{tag}-"))
    try:
        yield path
    finally:
        if os.environ.get("RAPPORT_BENCH_KEEP"):
            print(f"  (kept {path})")
        else:
            shutil.rmtree(path, ignore_errors=True)


# --- data through Rapport's own actions --------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    account_id: int
    inbox_id: int
    admin_email: str
    agent_emails: tuple[str, ...]


async def seed(database_url: str, workdir: Path, *, agents: int = 0) -> Seeded:
    """An account, an admin, `agents` agents and an SMS inbox, made by the domain actions."""
    from rapport.domain import events
    from rapport.domain.accounts.actions import create_account
    from rapport.domain.agents.actions import create_user
    from rapport.domain.agents.models import Role
    from rapport.domain.inboxes.actions import create_inbox
    from rapport.services import build_services
    from rapport.settings import Settings

    settings = Settings(
        env="development",  # type: ignore[arg-type]
        database_url=database_url,
        secret_key=SECRET,  # type: ignore[arg-type]
        storage_dir=workdir / "files",
        redis_url=None,
    )
    services = build_services(settings, with_hub=False)
    tag = uuid.uuid4().hex[:6]
    try:
        async with services.session() as session:
            account = await create_account(session, name="Bench")
            await events.commit(session)
        emails = [f"admin-{tag}@example.com"] + [
            f"agent{n}-{tag}@example.com" for n in range(agents)
        ]
        for n, email in enumerate(emails):
            async with services.session() as session:
                await create_user(
                    session,
                    account_id=account.id,
                    email=email,
                    name=f"Bench user {n}",
                    password=PASSWORD,
                    role=Role.admin if n == 0 else Role.agent,
                )
                await events.commit(session)
        async with services.session() as session:
            inbox = await create_inbox(
                session,
                account_id=account.id,
                name="SMS",
                channel="sms",
                config={
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "secondary_auth_token": "",
                    "from_number": OUR_NUMBER,
                    "messaging_service_sid": "",
                    "api_base_url": "http://127.0.0.1:9",
                    "answer_keywords": False,
                },
                box=services.box,
            )
            await events.commit(session)
        return Seeded(account.id, inbox.id, emails[0], tuple(emails[1:]))
    finally:
        await services.stop()


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def login_cookie(base_url: str, email: str) -> str:
    """Sign in through the real form; returns the Cookie header for websockets."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        page = await http.get("/login")
        token = _CSRF.search(page.text)
        if not token:
            raise RuntimeError("the login page has no CSRF token")
        response = await http.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"},
        )
        if response.status_code != 303:
            raise RuntimeError(f"login failed: {response.status_code}")
        return "; ".join(f"{k}={v}" for k, v in http.cookies.items())


# --- signed provider webhooks ------------------------------------------------------------------


def sms_form(sid: str, sender: str, body: str) -> list[tuple[str, str]]:
    """An incoming SMS webhook, field for field as the provider posts it."""
    return [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94107"),
        ("SmsSid", sid),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", body),
        ("FromCountry", "US"),
        ("To", OUR_NUMBER),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", sender),
        ("ApiVersion", "2010-04-01"),
    ]


def signed_sms_requests(
    port: int, path: str, count: int, *, customers: int, run: str
) -> list[Request]:
    """`count` distinct incoming SMS from a pool of `customers` numbers, signed with the
    provider's own validator library (HMAC-SHA1 over the URL and the sorted parameters)."""
    validator = RequestValidator(AUTH_TOKEN)
    url = f"http://127.0.0.1:{port}{path}"
    requests = []
    for n in range(count):
        sid = f"SM{run}{n:024d}"[:34]
        sender = f"+1415555{n % customers:04d}"
        params = sms_form(sid, sender, f"Order #{n} has not arrived yet, can you check?")
        body = urlencode(params).encode()
        signature = validator.compute_signature(url, dict(params))
        data = build_request(
            "POST",
            f"127.0.0.1:{port}",
            path,
            body,
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
                "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
            },
        )
        requests.append(Request(data, tag=sid))
    return requests
