"""``syncbackbone config``, run as a user runs it: effective settings, defaults and descriptions; secrets masked."""

from __future__ import annotations

import json

from support import cli, shell_env

DSN = "postgresql://app:hunter2@db.example/sync"


def test_config_prints_a_table_of_effective_values_with_secrets_masked() -> None:
    done = cli("--partitions", "8", "config", env=shell_env(SYNC_PG_DSN=DSN, SYNC_NAMESPACE="orders"))
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["variable", "value", "default", "description"]
    table = {row.split()[0]: row.split() for row in rows}
    assert table["SYNC_NAMESPACE"][1:3] == ["orders", "sync"]
    assert table["SYNC_PARTITIONS"][1:3] == ["8", "4"]
    assert table["SYNC_PG_DSN"][1:3] == ["********", "unset"]
    assert "hunter2" not in done.stdout and "topic prefix and PostgreSQL schema" in done.stdout


def test_config_json_is_one_object_keyed_by_variable_with_secrets_masked() -> None:
    done = cli("config", "--json", env=shell_env(SYNC_PG_DSN=DSN, SYNC_CIPHER_KEY="c2VjcmV0LWtleQ=="))
    assert done.returncode == 0, done.stderr
    settings = json.loads(done.stdout)
    assert settings["SYNC_PG_DSN"] == {
        "value": "********",
        "default": None,
        "description": settings["SYNC_PG_DSN"]["description"],
        "secret": True,
    }
    assert settings["SYNC_CIPHER_KEY"]["value"] == "********" and settings["SYNC_CIPHER_KEY_ID"]["value"] == "k1"
    assert settings["SYNC_SNAPSHOTS"] == dict(settings["SYNC_SNAPSHOTS"], value=True, default=True, secret=False)
    assert "hunter2" not in done.stdout and "c2VjcmV0LWtleQ" not in done.stdout


def test_config_markdown_is_the_readme_table() -> None:
    done = cli("config", "--markdown", env=shell_env(SYNC_NAMESPACE="not-shown"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("| variable | meaning | default |") and "not-shown" not in done.stdout


def test_a_bad_setting_is_one_line_and_exit_2() -> None:
    done = cli("config", env=shell_env(SYNC_SNAPSHOT_EVERY="often"))
    assert done.returncode == 2 and "snapshot_every" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
