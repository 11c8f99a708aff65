"""The `rapport` command: demo, serve, worker, migrate, user create."""

from __future__ import annotations

import asyncio
import gc
import getpass
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from rapport import __version__
from rapport.settings import Environment, Settings, SettingsError, load_settings

app = typer.Typer(
    name="rapport",
    help="Rapport, the open-source omnichannel contact center.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")
contacts_app = typer.Typer(help="Work on contacts.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")

DEMO_DATABASE = Path("var/demo.db")


def fail(message: str, code: int = 1) -> NoReturn:
    """One clear line on stderr, no traceback."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        fail(str(exc))


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """uvloop where it is installed (uvicorn[standard] brings it), else asyncio's own loop.

    `serve` runs uvicorn inside our own loop, so uvicorn's `loop="auto"` never gets to choose:
    without this the server and the worker ran on the slower selector loop.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


# A young-generation collection after this many new container objects, not CPython's 700: a
# request allocates a few thousand (rows, ORM states, frames), nearly all freed by reference
# counting, so the default collects many times per request for nothing.
GC_YOUNG_THRESHOLD = 10_000


def _settle_heap() -> None:
    """Take what start-up loaded (modules, mappers, compiled statements: about 230,000 objects
    in the web process) out of the garbage collector's sight, for long-running processes.

    Without this every full collection walked them all: 100-200 ms pauses under load, and about
    220 µs of CPU per webhook in the S2 benchmark (docs/performance.md, item 23). What is frozen
    is never collected, which is right for objects that live as long as the process anyway."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


@asynccontextmanager
async def _heap_settled(_services: Any) -> AsyncIterator[None]:
    _settle_heap()
    yield


def _run(coro: Coroutine[Any, Any, Any], *, fast_loop: bool = False) -> Any:
    """Run a coroutine, turning the usual operational failures into one line."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

    runner = _event_loop_runner() if fast_loop else asyncio.run
    try:
        return runner(coro)
    except (OperationalError, DBAPIError) as exc:
        fail(f"cannot use the database: {str(exc.orig).splitlines()[0]}")
    except ArgumentError as exc:
        fail(f"bad database URL: {exc}")
    except ConnectionError as exc:
        fail(f"cannot use the database: {exc}")
    except OSError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            fail(f"port {port} on {host} is already in use (choose another with --port)")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rapport {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Settings come from RAPPORT_* environment variables (or a .env file); see README.md."""


async def _serve(settings: Settings, host: str, port: int, with_worker: bool) -> None:
    import uvicorn

    from rapport.lib.logs import configure_logging
    from rapport.web.app import Background, create_app
    from rapport.workers.listeners import listeners_in_background
    from rapport.workers.relay import worker_in_background

    configure_logging(settings.log_level, settings.log_format)
    # The in-process worker comes with the channels' listeners (SMTP listener, IMAP pollers).
    background: list[Background] = (
        [worker_in_background, listeners_in_background] if with_worker else []
    )
    background.append(_heap_settled)  # last: once everything has started
    config = uvicorn.Config(
        create_app(settings, background=background),
        host=host,
        port=port,
        log_config=None,
        proxy_headers=False,  # forwarded headers are handled by Rapport's trusted-proxy rule
        ws_max_size=1024 * 1024,
        timeout_graceful_shutdown=10,
    )
    await uvicorn.Server(config).serve()


async def _migrate(settings: Settings, revision: str = "head") -> None:
    from rapport.db.migrate import upgrade

    if settings.is_sqlite:
        _ensure_sqlite_folder(settings.database_url)
    await upgrade(settings.database_url, revision)


def _ensure_sqlite_folder(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    reset: Annotated[bool, typer.Option(help="Start again from fresh demo data.")] = False,
) -> None:
    """Run Rapport with demo data on SQLite (nothing to install), worker included."""
    from rapport.cli.demo_data import DEMO_LOGINS, seed_demo

    if reset and DEMO_DATABASE.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{DEMO_DATABASE}{suffix}").unlink(missing_ok=True)
    os.environ.setdefault("RAPPORT_ENV", Environment.demo)
    os.environ.setdefault("RAPPORT_DATABASE_URL", f"sqlite:///{DEMO_DATABASE}")
    os.environ.setdefault("RAPPORT_PUBLIC_URL", f"http://localhost:{port}")
    os.environ.setdefault("RAPPORT_STORAGE_DIR", "var/demo-files")
    # The sandbox's fake providers are served by this very server on loopback: let replies
    # reach them (the demo only; every other mode keeps refusing private addresses).
    os.environ.setdefault("RAPPORT_HTTP_ALLOW_PRIVATE", "true")
    settings = _settings()
    _check_port(host, port)
    _run(_migrate(settings))
    created = _run(seed_demo(settings))
    url = settings.public_url
    typer.secho(f"\nRapport is running at {url}", fg=typer.colors.GREEN, bold=True)
    typer.echo(
        "Demo data " + ("created." if created else "already there (use --reset to start again).")
    )
    for role, email, password in DEMO_LOGINS:
        typer.echo(f"  {role:<7} {email}  /  {password}")
    typer.echo("Press Ctrl+C to stop.\n")
    _run(_serve(settings, host, port, with_worker=True), fast_loop=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    with_worker: Annotated[
        bool,
        typer.Option(
            "--with-worker",
            help="Also run the outbox worker and the channel listeners in this process.",
        ),
    ] = False,
) -> None:
    """Serve the web app (agent inbox, API, webhooks, websockets)."""
    settings = _settings()
    _check_port(host, port)
    _run(_serve(settings, host, port, with_worker), fast_loop=True)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs run at once.")] = 8,
) -> None:
    """Run an outbox worker: processes inbound payloads and delivers replies.

    Also runs the channels' listeners: the SMTP listener (when RAPPORT_SMTP_LISTEN_PORT is set)
    and the IMAP pollers of email inboxes.
    """
    settings = _settings(worker_concurrency=concurrency)
    _run(_worker(settings), fast_loop=True)


async def _worker(settings: Settings) -> None:
    from rapport.lib.logs import configure_logging
    from rapport.services import build_services
    from rapport.workers.listeners import listeners_in_background
    from rapport.workers.relay import Worker

    configure_logging(settings.log_level, settings.log_format)
    services = build_services(settings, with_hub=False)
    await services.start()
    _settle_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with listeners_in_background(services):
            await Worker(services).run(stop)
    finally:
        await services.stop()


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Bring the database schema up to date (safe to run on every deploy)."""
    settings = _settings()
    _run(_migrate(settings, revision))
    typer.echo(f"database at {revision}")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    role: Annotated[str, typer.Option(help="admin, supervisor or agent.")] = "agent",
    account: Annotated[
        str | None, typer.Option(help="Account name; created if it does not exist yet.")
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="Password (asked for when not given).")
    ] = None,
) -> None:
    """Create a user (and their account, for the first one)."""
    from rapport.domain.agents.models import Role

    if role not in {r.value for r in Role}:
        fail("role must be admin, supervisor or agent")
    settings = _settings()
    secret = password or getpass.getpass("Password: ")
    user_id = _run(_create_user(settings, email, name, Role(role), account, secret))
    typer.echo(f"created user {user_id} ({email})")


async def _create_user(
    settings: Settings, email: str, name: str, role: Any, account_name: str | None, password: str
) -> int:
    from sqlalchemy import select

    from rapport.db.engine import open_database
    from rapport.domain import events
    from rapport.domain.accounts.actions import create_account
    from rapport.domain.accounts.models import Account
    from rapport.domain.agents.actions import create_user
    from rapport.domain.errors import DomainError

    db = open_database(settings.database_url)
    try:
        async with db.session() as session:
            query = select(Account).order_by(Account.id).limit(1)
            if account_name:
                query = select(Account).where(Account.name == account_name)
            account = await session.scalar(query)
            if account is None:
                account = await create_account(session, name=account_name or "My team")
            try:
                user = await create_user(
                    session,
                    account_id=account.id,
                    email=email,
                    name=name,
                    password=password,
                    role=role,
                )
            except DomainError as exc:
                fail(str(exc))
            await events.commit(session)
            return user.id
    finally:
        await db.dispose()


@contacts_app.command("suggest-merges")
def contacts_suggest_merges(
    account: Annotated[
        str | None, typer.Option(help="Only this account (by name); every account otherwise.")
    ] = None,
) -> None:
    """Look for duplicate contacts again and add merge suggestions for agents to review."""
    from rapport.cli.contacts import suggest_merges_everywhere

    settings = _settings()
    result = _run(suggest_merges_everywhere(settings, account))
    if account and result.accounts == 0:
        fail(f"no account named {account!r}")
    typer.echo(
        f"scanned {result.contacts} contacts in {result.accounts} account(s); "
        f"{result.suggestions} suggested merge(s) waiting for review"
    )


def main() -> None:
    try:
        app()
    except SettingsError as exc:  # pragma: no cover - surfaced by _settings already
        typer.secho(f"error: {exc}", err=True)
        sys.exit(1)
