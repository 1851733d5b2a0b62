"""The README's configuration table names every setting the service reads."""

from __future__ import annotations

from idsvc.config import Settings
from tests.conftest import REPO_ROOT


def test_every_setting_is_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`IDSVC_{name.upper()}`" not in readme]
    assert missing == []


def test_every_doc_the_readme_links_exists() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for line in readme.splitlines():
        if line.startswith("- `docs/"):
            for part in line.split("`")[1::2]:
                if part.startswith("docs/"):
                    assert (REPO_ROOT / part).is_file(), part
