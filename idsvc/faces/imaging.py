"""Turning untrusted image bytes into a BGR pixel array, or a specific 4xx saying why not.

Pillow does the decoding (it knows EXIF orientation, CMYK and palette images); the pixel count is
checked from the header *before* any pixel is decoded, so a small file claiming 50,000 x 50,000
pixels (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from idsvc.core.errors import InvalidInput, PayloadTooLarge

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP"})
MIN_SIDE_PX = 32  # below this no detector finds a usable face

# A truncated JPEG must fail loudly, not decode into a half-grey picture that still "has a face".
ImageFile.LOAD_TRUNCATED_IMAGES = False


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode to an upright HxWx3 uint8 BGR array (OpenCV's order, which the models expect)."""
    if not data:
        raise InvalidInput("The image is empty.", code="image_empty")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check only warns below 2x its limit; ours is exact and an error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # Pillow's own hard limit, far above ours
        raise PayloadTooLarge(f"The image claims more than {max_pixels} pixels.", code="image_too_large") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInput("The data is not an image in a supported format (JPEG, PNG, WebP, BMP).", code="not_an_image") from exc
    if image.format not in ALLOWED_FORMATS:
        raise InvalidInput(f"Image format {image.format} is not accepted; send JPEG, PNG, WebP or BMP.", code="unsupported_image_format")
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"The image has {width}x{height} pixels, more than the {max_pixels} allowed.",
            code="image_too_large",
            details={"width": width, "height": height, "max_pixels": max_pixels},
        )
    if min(width, height) < MIN_SIDE_PX:
        raise InvalidInput(f"The image is {width}x{height}; each side must be at least {MIN_SIDE_PX} pixels.", code="image_too_small")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow signals truncation and corrupt streams with these
        raise InvalidInput("The image data is truncated or corrupt.", code="image_corrupt") from exc
    image = ImageOps.exif_transpose(image)  # phones store portrait shots sideways plus an orientation tag
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
