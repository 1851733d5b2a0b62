"""Untrusted image bytes: each kind of bad input gets its own error code; odd but valid images work."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from idsvc.core.errors import ApiError
from idsvc.faces.engine import FaceEngine, QualityPolicy, cosine
from idsvc.faces.imaging import decode_image
from tests.faces.conftest import encode

MAX_PIXELS = 40_000_000


def code_of(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        decode_image(data, max_pixels)
    return caught.value.status, caught.value.code


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def test_rejections_each_have_a_code(photo) -> None:  # noqa: ANN001
    jpeg = photo("img1.jpg")
    assert code_of(b"") == (422, "image_empty")
    assert code_of(b"%PDF-1.4 not a picture at all") == (415, "image_invalid")
    assert code_of(jpeg[: len(jpeg) // 2]) == (422, "image_corrupt")
    assert code_of(png_claiming(50_000, 50_000)) == (413, "image_too_large")
    assert code_of(jpeg, max_pixels=100_000) == (413, "image_too_large")
    assert code_of(encode(np.zeros((20, 20, 3), np.uint8), "PNG")) == (422, "image_too_small")
    assert code_of(encode(np.zeros((64, 64, 3), np.uint8), "GIF")) == (415, "image_format_unsupported")


def test_grey_cmyk_and_alpha_images_decode_to_bgr_with_the_same_face(photo, engine: FaceEngine) -> None:  # noqa: ANN001
    original = Image.open(io.BytesIO(photo("img1.jpg")))
    reference = engine.extract(decode_image(photo("img1.jpg"), MAX_PIXELS), QualityPolicy()).embedding
    rgba = original.convert("RGBA")
    rgba.putalpha(255)
    variants = {
        "grey": encode(original.convert("L")),
        "cmyk": encode(original.convert("CMYK")),
        "png_alpha": encode(rgba, "PNG"),
    }
    for name, data in variants.items():
        image = decode_image(data, MAX_PIXELS)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        found = engine.extract(image, QualityPolicy())
        assert found.embedding is not None, name
        assert cosine(found.embedding, reference) > 0.8, name


def test_transparent_pixels_become_white() -> None:
    clear = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    assert (decode_image(encode(clear, "PNG"), MAX_PIXELS) == 255).all()


def test_exif_orientation_is_applied(photo, engine: FaceEngine) -> None:  # noqa: ANN001
    upright = Image.open(io.BytesIO(photo("img1.jpg")))
    # Store the pixels sideways with orientation 6 ("rotate 90 CW to view"), as phones do.
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(encode(sideways, exif=exif.tobytes()), MAX_PIXELS)
    assert decoded.shape[:2] == (upright.height, upright.width)
    reference = engine.extract(decode_image(photo("img1.jpg"), MAX_PIXELS), QualityPolicy()).embedding
    assert cosine(engine.extract(decoded, QualityPolicy()).embedding, reference) > 0.9
