"""Turning untrusted image bytes into a BGR pixel array, or a specific 4xx saying why not.

Opening and the checks every uploaded picture gets (empty, not a picture, format, pixel count before
decoding) are core/images.py's, shared with the QR camera frames, so both answer the same codes.
Pillow does the decoding (it knows EXIF orientation, CMYK and palette images).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from idsvc.core.errors import InvalidInput
from idsvc.core.images import decode_slot, load_pixels, open_picture

MIN_SIDE_PX = 32  # below this no detector finds a usable face
# The detectors look at 640 pixels at most; the working size keeps faces of a 12 MP photo sharp
# enough for the 112 x 112 crop while a picture costs at most ~12 MB as an array.
WORKING_SIDE_PX = 2048


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode to an upright HxWx3 uint8 BGR array (OpenCV's order, which the models expect)."""
    image = open_picture(data, max_pixels)
    width, height = image.size
    if min(width, height) < MIN_SIDE_PX:
        raise InvalidInput(f"The picture is {width}x{height}; each side must be at least {MIN_SIDE_PX} pixels.", code="image_too_small")
    with decode_slot():
        image = ImageOps.exif_transpose(load_pixels(image, WORKING_SIDE_PX))  # phones store portrait shots sideways plus an orientation tag
        rgb = _to_rgb(image)
        return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (grey, CMYK, palette, 16-bit, alpha) to 8-bit RGB; transparency becomes white."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit grey: scale to 8 bits rather than clip everything above 255 to white.
        array = np.asarray(image, dtype=np.uint32)
        return Image.fromarray((array >> 8).astype(np.uint8) if array.max() > 255 else array.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")
