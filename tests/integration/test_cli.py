"""The `contactcentre` command as a user runs it."""

import os
import subprocess
import sys

import pytest

from contactcentre.cli import main


def run(*args: str, env: dict | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "contactcentre", *args], capture_output=True, text=True,
                          timeout=120, input=stdin, env={**os.environ, **(env or {})})


def test_help_lists_the_subcommands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("demo", "serve", "db", "seed", "agent"):
        assert command in result.stdout


def test_a_wrong_setting_stops_start_up_with_one_line_naming_it():
    result = run("db", "upgrade", env={"CC_PBX_MODE": "asterix"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "contactcentre: configuration error: pbx.mode: expected simulator|asterisk, got 'asterix'"]


def test_db_upgrade_seed_and_agent_add(tmp_path):
    env = {"CC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cc.db'}"}
    assert run("db", "upgrade", env=env).returncode == 0
    seeded = run("seed", "--customers", "2000", env=env)
    assert seeded.returncode == 0, seeded.stderr
    added = run("agent", "add", "alice", "--name", "Alice Agent", "--device", "PJSIP/agent1", env=env,
                stdin="long enough password\n")
    assert added.returncode == 0, added.stderr
    short = run("agent", "add", "bob", "--name", "Bob", env=env, stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr


def test_seed_refuses_a_count_that_is_not_positive(capsys):
    with pytest.raises(SystemExit):
        main(["seed", "--customers", "0"])
    assert "expected a number above 0" in capsys.readouterr().err
