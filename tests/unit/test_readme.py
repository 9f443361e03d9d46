"""The README stays true to the code: its settings table is the settings model, its layout names every infra/ module."""

from __future__ import annotations

import re
from pathlib import Path

from syncbackbone.infra.cli.config import MASK, markdown_table, settings_shown, text_table
from syncbackbone.infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
REGENERATE = "regenerate the README's table with `syncbackbone config --markdown`"


def section(heading: str, text: str = README) -> str:
    """The text under ``heading`` (e.g. ``## Layout``) up to the next heading of its level or above."""
    lines = text.splitlines()
    start = lines.index(heading) + 1
    level = len(heading) - len(heading.lstrip("#"))
    end = next((i for i in range(start, len(lines)) if re.match(rf"#{{1,{level}}} ", lines[i])), len(lines))
    return "\n".join(lines[start:end])


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row in ``text`` but the header and separator rows."""
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]] for line in text.splitlines()]
    rows = [r for r, line in zip(rows, text.splitlines(), strict=True) if line.startswith("|")]
    return [r for r in rows if r[0] != "variable" and not set(r[0]) <= {"-", " "}]


def settings_rows(text: str) -> dict[str, list[str]]:
    """README table rows whose first cell names a ``SYNC_*`` variable, by variable."""
    rows = table_rows(text)
    return {m.group(1): r for r in rows if (m := re.match(r"`(SYNC_[A-Z0-9_]+)`", r[0]))}


def test_the_configuration_table_lists_exactly_the_settings_of_the_model() -> None:
    readme = settings_rows(section("### Configuration"))
    model = settings_rows(markdown_table(settings_shown(None)))
    expected = {"SYNC_" + name.upper() for name in Settings.model_fields}
    assert set(model) == expected
    assert sorted(readme) == sorted(model), REGENERATE
    for variable, cells in model.items():
        assert readme[variable] == cells, f"{variable}: {REGENERATE}"


def test_every_setting_has_a_description_and_its_default_in_the_table() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"settings field {name} has no description"
    readme = settings_rows(section("### Configuration"))
    for s in settings_shown(None):
        assert s.variable in readme, f"{s.variable} is not in the README: {REGENERATE}"
        assert readme[s.variable][1].replace("\\|", "|") == s.description, REGENERATE


def test_the_readme_has_one_settings_table() -> None:
    everywhere = [r[0] for r in table_rows(README) if r[0].startswith("`SYNC_")]
    assert len(everywhere) == len(settings_rows(section("### Configuration"))), "SYNC_* rows outside Configuration"


def test_secrets_are_masked_and_other_values_shown() -> None:
    settings = Settings(pg_dsn="postgresql://u:hunter2@h/db", cipher_key="c2VjcmV0", namespace="shown")
    rows = {s.variable: s for s in settings_shown(settings)}
    assert rows["SYNC_PG_DSN"].value == MASK and rows["SYNC_CIPHER_KEY"].value == MASK
    assert rows["SYNC_NAMESPACE"].value == "shown" and rows["SYNC_KAFKA_BOOTSTRAP"].value is None
    table = text_table(list(rows.values()))
    assert "hunter2" not in table and "c2VjcmV0" not in table and MASK in table


def infra_modules() -> set[str]:
    """Every module of infra/ (``infra/x/y.py``) and every sub-package (``infra/x/``), by path."""
    infra = ROOT / "infra"
    modules = {p.relative_to(ROOT).as_posix() for p in infra.rglob("*.py") if p.name != "__init__.py"}
    packages = {p.parent.relative_to(ROOT).as_posix() + "/" for p in infra.rglob("__init__.py") if p.parent != infra}
    return modules | packages


def test_the_layout_names_every_module_of_infra() -> None:
    named = set(re.findall(r"`(infra/[^`\s]*)`", section("## Layout")))
    missing = sorted(infra_modules() - named)
    assert not missing, f"README's Layout does not name {missing}: add a row for each, with what it holds"
    rows = {r[0].strip("*`"): r[1].strip("*") for r in table_rows(section("## Layout")) if len(r) == 2}
    vague = sorted(m for m in infra_modules() if rows.get(m, "") in ("", "TODO"))
    assert not vague, f"README's Layout names {vague} without a row saying what each holds"


def test_every_infra_path_the_readme_and_docs_name_exists() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named = set(re.findall(r"`(infra/[^`\s:]*)", page.read_text(encoding="utf-8")))
        stale = sorted(p for p in named if not (ROOT / p).exists())
        assert not stale, f"{page.name} names paths that are not in the tree: {stale}"
