"""ruff over the whole repository, with the rule set pinned in pyproject.toml ([tool.ruff.lint])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RUFF), "check", "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_repository_is_clean() -> None:
    result = _ruff(".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unused_import_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (tmp_path / "module.py").write_text("import os\n")
    result = _ruff(".", cwd=tmp_path)
    assert result.returncode == 1 and "F401" in result.stdout
