"""``syncbackbone config``: the effective settings with their defaults and descriptions, secrets masked.

Everything shown comes from the settings model (``infra/settings.py``): a new field appears
here, and in the README's table, without code of its own. Text is a table (variable, value,
default, description); ``--json`` prints one object keyed by variable; ``--markdown`` prints
the README's configuration table (defaults, never values), so the README is regenerated
from the model and ``tests/unit/test_readme.py`` checks that it was. A field carrying
``SECRET`` shows ``MASK`` in place of a value that is set.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from ..settings import Settings, load_settings

MASK = "********"


@dataclass(frozen=True)
class Setting:
    """One setting as shown: its variable, effective value (masked if secret), default and description."""

    variable: str
    value: Any
    default: Any
    description: str
    secret: bool


def add_config_command(sub: Any) -> None:
    """Add ``config`` to the ``syncbackbone`` parser's subparsers."""
    config = sub.add_parser("config", help="print the effective settings (SYNC_* variables), secrets masked")
    form = config.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print one JSON object keyed by variable")
    form.add_argument("--markdown", action="store_true", help="print the README's table of settings and defaults")


def run_config(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """Print the settings as ``args`` asks; a bad variable raises ConfigurationError (exit 2)."""
    if args.markdown:
        print(markdown_table(settings_shown(None)))
        return 0
    shown = settings_shown(load_settings(**overrides))
    if args.json:
        print(json.dumps({s.variable: as_json(s) for s in shown}))
    else:
        print(text_table(shown))
    return 0


def settings_shown(settings: Settings | None) -> list[Setting]:
    """Every field of the model, in model order; values from ``settings`` (None: the defaults)."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = to_jsonable_python(field.get_default(call_default_factory=True))
        value = default if settings is None else to_jsonable_python(getattr(settings, name))
        secret = is_secret(field)
        masked = MASK if secret and value is not None else value
        rows.append(Setting(env_name(name, field), masked, default, field.description or "", secret))
    return rows


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable a field is read from: ``SYNC_`` + its name (or alias) in upper case."""
    return (str(Settings.model_config.get("env_prefix", "")) + (field.alias or name)).upper()


def is_secret(field: FieldInfo) -> bool:
    """Whether the field carries ``SECRET`` (its value is never shown)."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("secret") is True


def shown(value: Any) -> str:
    """A JSON-able value as a user writes it in a variable: ``unset``, ``true``, ``30``, ``{}``."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int | str):
        return str(value) if value != "" else '""'
    return json.dumps(value)


def as_json(s: Setting) -> dict[str, Any]:
    """One setting's entry in ``config --json``."""
    return {"value": s.value, "default": s.default, "description": s.description, "secret": s.secret}


def text_table(rows: list[Setting]) -> str:
    """Aligned columns: variable, value, default, description."""
    cells = [("variable", "value", "default", "description")]
    cells += [(s.variable, shown(s.value), shown(s.default), s.description) for s in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(3)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[3]]) for row in cells)


def markdown_table(rows: list[Setting]) -> str:
    """The README's configuration table: variable (marked if secret), meaning, default."""
    lines = ["| variable | meaning | default |", "| --- | --- | --- |"]
    for s in rows:
        variable = f"`{s.variable}`" + (" (secret)" if s.secret else "")
        default = "unset" if s.default is None else f"`{shown(s.default)}`"
        meaning = s.description.replace("|", "\\|")
        lines.append(f"| {variable} | {meaning} | {default} |")
    return "\n".join(lines)
