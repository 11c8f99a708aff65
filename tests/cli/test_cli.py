"""The `rapport` command: help, and every operational error as one clear line."""

import socket
import subprocess

import pytest

from tests.conftest import TEST_SECRET
from tests.support.processes import RAPPORT, rapport_env


def run(*args, **env):
    return subprocess.run(
        [RAPPORT, *args],
        env=rapport_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_help_lists_every_command():
    result = run("--help")
    assert result.returncode == 0
    for command in ("demo", "serve", "worker", "migrate", "user"):
        assert command in result.stdout
    assert "create" in run("user", "--help").stdout


def test_a_bad_database_url():
    line = one_line_error(run("migrate", database_url="mysql://nope/x"))
    assert line.startswith("error: RAPPORT_DATABASE_URL")


def test_an_unreachable_database():
    line = one_line_error(run("migrate", database_url="postgresql://nobody@127.0.0.1:1/x"))
    assert line.startswith("error: cannot use the database")


def test_a_missing_secret_in_production():
    line = one_line_error(run("serve", env="production"))
    assert "RAPPORT_SECRET_KEY" in line


def test_a_port_already_taken(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_line_error(
            run("serve", "--port", str(port), database_url=f"sqlite:///{tmp_path}/r.db")
        )
    assert line == f"error: port {port} on 127.0.0.1 is already in use (choose another with --port)"


def test_migrate_then_create_users(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    assert run("migrate", database_url=url).returncode == 0
    created = run(
        "user",
        "create",
        "--email",
        "boss@example.com",
        "--name",
        "Boss",
        "--role",
        "admin",
        "--account",
        "Example Inc",
        "--password",
        "long enough password",
        database_url=url,
        secret_key=TEST_SECRET,
    )
    assert created.returncode == 0, created.stderr
    assert "created user" in created.stdout
    again = run(
        "user",
        "create",
        "--email",
        "boss@example.com",
        "--name",
        "Boss",
        "--password",
        "long enough password",
        database_url=url,
    )
    assert one_line_error(again) == "error: a user with that email already exists"
    weak = run(
        "user",
        "create",
        "--email",
        "x@example.com",
        "--name",
        "X",
        "--password",
        "short",
        database_url=url,
    )
    assert "at least 8 characters" in one_line_error(weak)


@pytest.mark.parametrize("role", ["root"])
def test_an_unknown_role(role, tmp_path):
    result = run(
        "user",
        "create",
        "--email",
        "a@example.com",
        "--name",
        "A",
        "--role",
        role,
        "--password",
        "long enough password",
        database_url=f"sqlite:///{tmp_path}/r.db",
    )
    assert one_line_error(result) == "error: role must be admin, supervisor or agent"
