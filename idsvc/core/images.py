"""Opening an uploaded picture, the one way for QR camera frames and face photos alike.

Untrusted bytes become a Pillow image, or one of the same few 4xx errors whatever the endpoint
(docs/errors.md): ``image_empty``, ``image_invalid`` (not a picture), ``image_format_unsupported``
(a GIF, a TIFF...), ``image_too_large`` (the header claims more pixels than allowed: checked before
any pixel is decoded, so a small file posing as 50,000 x 50,000 costs nothing). Decoding the pixels
is the caller's next step (:func:`load_pixels`), which can still find the data ``image_corrupt``.

Decoding is what costs memory (a 4096 x 4096 picture is 50 MB of pixels before any copy), so it is
bounded three ways: the pixel count in the header (refused above it), a working size (JPEG decodes
straight to it with ``draft``, other formats are reduced right after decoding, before any copy), and
:data:`DECODE_SLOTS` pictures at once per process (a caller waits up to :data:`SLOT_WAIT_S` for a
slot, then gets 503 ``image_decoder_busy``).
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, ImageFile, UnidentifiedImageError

from idsvc.core.errors import ApiError, InvalidInput, PayloadTooLarge

ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP"})
ACCEPTED_TEXT = "PNG, JPEG, WebP or BMP"

# Two cores: more decodes at once only add memory, not throughput.
DECODE_SLOTS = 2
SLOT_WAIT_S = 5.0
_slots = threading.BoundedSemaphore(DECODE_SLOTS)

# A truncated JPEG must fail loudly, not decode into a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageInvalid(ApiError):
    status = 415
    code = "image_invalid"


class ImageFormatUnsupported(ApiError):
    status = 415
    code = "image_format_unsupported"


def open_picture(data: bytes, max_pixels: int) -> Image.Image:
    """The picture's header, read and checked; its pixels are not decoded yet."""
    if not data:
        raise InvalidInput("The picture is empty.", code="image_empty")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check only warns below twice its limit; ours is exact and an error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:  # Pillow's own hard limit, far above ours
        raise PayloadTooLarge(f"The picture claims more than {max_pixels} pixels.", code="image_too_large") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageInvalid(f"The upload is not a picture; send {ACCEPTED_TEXT}.") from None
    if image.format not in ACCEPTED_FORMATS:
        raise ImageFormatUnsupported(f"{image.format} pictures are not accepted; send {ACCEPTED_TEXT}.", details={"format": image.format})
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"The picture has {width}x{height} pixels, more than the {max_pixels} allowed.",
            code="image_too_large",
            details={"width": width, "height": height, "max_pixels": max_pixels},
        )
    return image


class DecoderBusy(ApiError):
    status = 503
    code = "image_decoder_busy"


@contextmanager
def decode_slot() -> Iterator[None]:
    """Hold one of the process's decode slots while a picture is decoded and turned into an array."""
    if not _slots.acquire(timeout=SLOT_WAIT_S):
        raise DecoderBusy(f"Every picture decoder was busy for {SLOT_WAIT_S:.0f} s; retry.")
    try:
        yield
    finally:
        _slots.release()


def load_pixels(image: Image.Image, max_side: int | None = None) -> Image.Image:
    """Decode the pixels, no larger than ``max_side`` on the longer side when given (JPEG decodes at
    a reduced scale, others are reduced at once); a truncated or corrupt stream is ``image_corrupt``."""
    try:
        if max_side is not None and max(image.size) > max_side:
            # reducing_gap=1: JPEG decodes at the smallest DCT scale still at least max_side (draft), then
            # a resize in place; the EXIF orientation is kept for the caller's exif_transpose.
            image.thumbnail((max_side, max_side), reducing_gap=1.0)
        else:
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):  # how Pillow signals truncation and corrupt streams
        raise InvalidInput("The picture data is truncated or corrupt.", code="image_corrupt") from None
    return image
