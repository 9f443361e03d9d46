"""The code stays lint-clean (ruff) and type-clean (mypy --strict), checked like any other behaviour.

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
