"""The dependency rule (docs/architecture.md): packages import only downwards, checked by import-linter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # analyse the tree at root, not the installed copy
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / ".importlinter")], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_packages_import_only_downwards() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_fails_the_check(tmp_path: Path) -> None:
    for package in ("idsvc", "door_firmware_bridge"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    registry_models = tmp_path / "idsvc" / "registry" / "models.py"
    # Even a function-local import counts: the registry may not reach up into revocation.
    registry_models.write_text(registry_models.read_text() + "\n\ndef _upward() -> None:\n    from idsvc.revocation import denyset  # noqa: F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "idsvc.registry.models -> idsvc.revocation.denyset" in result.stdout
