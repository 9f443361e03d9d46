"""The code stays lint-clean (ruff), type-clean (mypy --strict) and keeps its import rules (import-linter).

mypy cannot follow the package-dir mapping of an editable install, so it checks a
shadow package whose sub-packages are links to the repository's folders.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "commands", "projections", "infra", "schemas", "client")


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_code_passes_ruff() -> None:
    done = run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_passes_mypy_strict(tmp_path: Path) -> None:
    shadow = tmp_path / "syncbackbone"
    shadow.mkdir()
    for name in ("__init__.py", "py.typed"):
        (shadow / name).write_bytes((ROOT / "syncbackbone" / name).read_bytes())
    for folder in PACKAGES:
        (shadow / folder).symlink_to(ROOT / folder, target_is_directory=True)
    done = run("mypy", "--strict", "--ignore-missing-imports", "--no-incremental", "syncbackbone", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_import_rules_in_pyproject_hold() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout and "KEPT" in done.stdout


def test_a_wrong_import_breaks_the_import_rules(tmp_path: Path) -> None:
    """The rules can fail: the same contracts over a copy in which the core imports infra."""
    shadow = tmp_path / "syncbackbone"
    shadow.mkdir()
    for name in ("__init__.py", "py.typed"):
        (shadow / name).write_bytes((ROOT / "syncbackbone" / name).read_bytes())
    for folder in PACKAGES:
        (shadow / folder).symlink_to(ROOT / folder, target_is_directory=True)
    (shadow / "commands").unlink()
    commands = shadow / "commands"
    commands.mkdir()
    for module in (ROOT / "commands").glob("*.py"):
        (commands / module.name).write_bytes(module.read_bytes())
    with (commands / "handlers.py").open("a") as f:
        f.write("\nfrom ..infra import bootstrap as _wrong  # noqa\n")
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0
    assert "The core never imports infra; commands and projections meet only in the log BROKEN" in done.stdout
    assert "syncbackbone.commands.handlers -> syncbackbone.infra" in done.stdout
