"""Face test fixtures: the engine (loaded once per run) and the shared labelled photos."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from idsvc.config import Settings
from idsvc.faces.engine import FaceEngine, get_engine
from idsvc.faces.packs import PackError
from tests.prerequisites import missing


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    try:
        return get_engine(settings.models_dir, settings.face_pack, settings.face_onnx_threads)
    except PackError as exc:
        missing(f"face model pack absent ({exc}); run `idsvc models install` first")


@pytest.fixture(scope="session")
def faces_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "faces"
    if not (path / "identities.csv").is_file():
        missing(f"labelled face photos not found in {path}")
    return path


@pytest.fixture(scope="session")
def photo(faces_dir: Path):
    def read(name: str) -> bytes:
        return (faces_dir / name).read_bytes()

    return read


def encode(array_or_image: np.ndarray | Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()
