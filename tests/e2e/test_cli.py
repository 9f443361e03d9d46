"""The command line, run as a user runs it: a real process, the embedded log on real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import cli

from syncbackbone.infra.runtime.processes import embedded_pgdata, embedded_postmaster


def test_submit_prints_one_json_result_and_a_stale_write_is_rejected(env: dict[str, str]) -> None:
    first = cli(
        "submit", "CreateDocument", "--collection", "notes", "--id", "a", "--data", '{"t": 1}', "--json", env=env
    )
    assert first.returncode == 0, first.stderr
    accepted = json.loads(first.stdout)
    assert accepted["status"] == "accepted" and accepted["version"] == 1 and accepted["positions"]
    stale = cli(
        "submit",
        "PutDocument",
        "--collection",
        "notes",
        "--id",
        "a",
        "--data",
        "{}",
        "--expected-version",
        "0",
        "--json",
        env=env,
    )
    rejected = json.loads(stale.stdout)
    assert stale.returncode == 1
    assert (rejected["status"], rejected["code"], rejected["version"]) == ("rejected", "version_conflict", 1)
    assert "current version is 1" in rejected["reason"]


def test_a_retried_command_id_is_answered_without_new_events(env: dict[str, str]) -> None:
    args = (
        "submit",
        "PutDocument",
        "--collection",
        "notes",
        "--id",
        "b",
        "--data",
        '{"x": 1}',
        "--command-id",
        "cmd-42",
        "--json",
    )
    once, twice = json.loads(cli(*args, env=env).stdout), json.loads(cli(*args, env=env).stdout)
    assert once == twice and once["version"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("submit", "PutDocument", "--collection", "c", "--id", "x", "--data", "{oops"), "--data is not valid JSON"),
        (("submit", "FrobDocument", "--collection", "c", "--id", "x"), "unknown command type 'FrobDocument'"),
        (("submit", "PutDocument", "--collection", "a/b", "--id", "x", "--data", "{}"), "collection"),
    ],
)
def test_bad_input_gets_a_one_line_error_and_no_traceback(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    done = cli(*args, env=env)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_bad_setting_is_named_with_the_variable(env: dict[str, str]) -> None:
    done = cli("dlq", "list", env=dict(env, SYNC_PARTITIONS="many"))
    assert done.returncode == 2 and "partitions" in done.stderr and "Traceback" not in done.stderr


def test_demo_runs_on_the_zero_config_embedded_default(zero_config: dict[str, str]) -> None:
    done = cli("demo", env=zero_config, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "accepted" in done.stdout and "version_conflict" in done.stdout
    assert "DocumentPatched" in done.stdout and "state:" in done.stdout


def test_stop_embedded_stops_the_server_the_embedded_default_left_running(zero_config: dict[str, str]) -> None:
    assert (
        cli("submit", "PutDocument", "--collection", "n", "--id", "a", "--data", "{}", env=zero_config).returncode == 0
    )
    pgdata = embedded_pgdata(Path(zero_config["SYNC_DATA_DIR"]))
    assert embedded_postmaster(pgdata) is not None  # still running after the command: the next one reuses it
    stopped = cli("stop-embedded", env=zero_config)
    assert stopped.returncode == 0 and "stopped the embedded PostgreSQL server" in stopped.stdout
    assert not (pgdata / "postmaster.pid").exists() and embedded_postmaster(pgdata) is None
    again = cli("stop-embedded", env=zero_config)
    assert again.returncode == 0 and "none was running" in again.stdout
