"""Defect 7 of issue 11: the data directory is 0700 and the service's files in it 0600 (the SQLite
database with every person's record, its WAL, the decision journals, the development master key)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from idsvc.audit.decision_log import JOURNAL_DIR, DecisionLog
from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.db.migrate import upgrade


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _loose_modes(root: Path) -> dict[str, str]:
    """Every file or directory under ``root`` (itself included) that group or others may use."""
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root)): oct(_mode(p)) for p in paths if _mode(p) & 0o077}


def test_idsvc_creates_its_data_directory_private(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = os.environ | {"IDSVC_DATA_DIR": str(data), "IDSVC_DATABASE_URL": "", "IDSVC_MASTER_KEY": ""}
    subprocess.run([sys.executable, "-m", "idsvc", "db", "upgrade"], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    assert (data / "idsvc.db").is_file() and (data / "master.key").is_file()
    assert _loose_modes(data) == {}


def test_the_service_tightens_what_an_older_release_left_readable(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # whatever the umask
    url = f"sqlite:///{data / 'idsvc.db'}"
    upgrade(url)
    os.chmod(data / "idsvc.db", 0o644)
    settings = Settings(data_dir=data, database_url=url, master_key="", _env_file=None)  # type: ignore[call-arg]
    ctx = AppContext.from_settings(settings)
    try:
        log = DecisionLog(ctx.db, data / JOURNAL_DIR)
        with ctx.db.session() as s:  # a write, so the WAL and shared-memory files exist
            s.connection().exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
        assert (data / "idsvc.db-wal").exists()
        assert list((data / JOURNAL_DIR).glob("*.journal"))
        assert _loose_modes(data) == {}
        log.close()
    finally:
        ctx.close()

