"""QR pictures: render passes and unit codes (segno, level Q), read camera frames (zxing-cpp).

zxing-cpp is the default reader (measured here: ~1 ms per 640x480 frame and the best success rate
on distorted frames); pyzbar, when installed (``pip install idsvc[pyzbar]`` plus the zbar library),
is tried only when zxing-cpp finds nothing. Uploaded pictures are untrusted: the format is checked
and the pixel count capped before anything is decoded (core/images.py).
"""

from __future__ import annotations

import io

import numpy as np
import segno
import zxingcpp

from idsvc.core.images import decode_slot, load_pixels, open_picture

UNIT_PREFIX = "NHU1:"  # "one house, one code": a unit's stable code, not a credential
ERROR_LEVEL = "q"  # ~25 % of the symbol may be damaged
MAX_PIXELS = 4096 * 4096

try:  # optional fallback reader
    from pyzbar import pyzbar as _pyzbar
except Exception:  # ImportError, or the zbar shared library is missing
    _pyzbar = None


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
    """Decode an uploaded picture to grayscale; a bad one is core/images.py's 4xx (the same as for face photos)."""
    image = open_picture(data, MAX_PIXELS)
    with decode_slot():
        image.draft("L", image.size)  # JPEG: decode the grey channel only (full size: small codes need every pixel)
        return np.asarray(load_pixels(image).convert("L"))


def decode_image(data: bytes) -> list[str]:
    return decode_frame(load_gray(data))
