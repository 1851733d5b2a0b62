"""QR pictures: render passes and unit codes (segno, level Q), read camera frames (zxing-cpp).

zxing-cpp is the default reader (measured here: ~1 ms per 640x480 frame and the best success rate
on distorted frames); pyzbar, when installed (``pip install idsvc[pyzbar]`` plus the zbar library),
is tried only when zxing-cpp finds nothing. Uploaded pictures are untrusted: the format is checked
and the pixel count capped before anything is decoded.
"""

from __future__ import annotations

import io

import numpy as np
import segno
import zxingcpp
from PIL import Image, UnidentifiedImageError

UNIT_PREFIX = "NHU1:"  # "one house, one code": a unit's stable code, not a credential
ERROR_LEVEL = "q"  # ~25 % of the symbol may be damaged
MAX_PIXELS = 4096 * 4096
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP"})

try:  # optional fallback reader
    from pyzbar import pyzbar as _pyzbar
except Exception:  # ImportError, or the zbar shared library is missing
    _pyzbar = None


class ImageError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _symbol(text: str) -> segno.QRCode:
    # boost_error=False: level Q exactly as specified, so the symbol size is predictable for printing.
    return segno.make_qr(text, error=ERROR_LEVEL, boost_error=False)


def unit_code_text(code: str) -> str:
    return UNIT_PREFIX + code.upper()  # upper case keeps the QR in compact alphanumeric mode


def render_png(text: str, scale: int = 6, border: int = 4) -> bytes:
    out = io.BytesIO()
    _symbol(text).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def render_svg(text: str, scale: int = 6, border: int = 4) -> bytes:
    out = io.BytesIO()
    _symbol(text).save(out, kind="svg", scale=scale, border=border, xmldecl=False)
    return out.getvalue()


def symbol_version(text: str) -> int:
    version = _symbol(text).version
    assert isinstance(version, int)
    return version


def decode_frame(gray: np.ndarray) -> list[str]:
    """Every QR text in a grayscale (or BGR) frame, zxing-cpp first, pyzbar as fallback."""
    found = [r.text for r in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode) if r.valid]
    if not found and _pyzbar is not None:
        found = [r.data.decode("latin-1") for r in _pyzbar.decode(gray, symbols=[_pyzbar.ZBarSymbol.QRCODE])]
    return found


def load_gray(data: bytes) -> np.ndarray:
    """Decode an uploaded picture to grayscale, refusing non-images and decompression bombs."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ACCEPTED_FORMATS:
                raise ImageError("image_format_unsupported", f"{image.format} pictures are not accepted; send PNG or JPEG.")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError("image_too_large", f"the picture is {width}x{height}; at most {MAX_PIXELS} pixels are accepted.")
            return np.asarray(image.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError("image_invalid", f"the upload is not a readable picture: {exc}.") from None


def decode_image(data: bytes) -> list[str]:
    return decode_frame(load_gray(data))
