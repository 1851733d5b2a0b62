"""QR decoding of camera-like frames: zxing-cpp (our default) against pyzbar and OpenCV, same frames.

    apt-get install libzbar0 && .venv/bin/pip install -e '.[bench]'    # pyzbar needs the zbar library
    .venv/bin/python bench/qr_decode.py [--per-kind 40] [--seed 7]

Frames are 640x480 grayscale, each holding one real pass QR (level Q, as issued) at a random place
and size, in five kinds: clean, blurred (Gaussian, sigma 1.2-2.2 px), noisy (Gaussian noise, sigma
20-45), rotated (10-80 degrees) and perspective-warped (corners moved by up to 18 %). A frame counts
as decoded only when the text is exactly the pass. Median decode time per frame, per reader.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import segno
import zxingcpp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idsvc.passes import qr

WIDTH, HEIGHT = 640, 480
KINDS = ("clean", "blurred", "noisy", "rotated", "perspective")


def sample_text(rng: np.random.Generator) -> str:
    """A pass-sized QR text (340 base45 characters behind our prefix, like an issued pass)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
    return "NH1:" + "".join(rng.choice(list(alphabet), 336))


def symbol(text: str, module_px: int) -> np.ndarray:
    matrix = np.array(segno.make_qr(text, error=qr.ERROR_LEVEL, boost_error=False).matrix, dtype=np.uint8)
    matrix = np.pad(matrix, 4)  # quiet zone
    return np.kron(1 - matrix, np.ones((module_px, module_px), dtype=np.uint8)) * 255


def frame(text: str, kind: str, rng: np.random.Generator) -> np.ndarray:
    canvas = np.full((HEIGHT, WIDTH), int(rng.integers(150, 230)), dtype=np.uint8)
    code = symbol(text, int(rng.integers(3, 5)))
    size = code.shape[0]
    margin = size // 4  # so rotation and warping keep the whole symbol inside the frame
    y, x = int(rng.integers(margin, HEIGHT - size - margin)), int(rng.integers(margin, WIDTH - size - margin))
    canvas[y : y + size, x : x + size] = code
    if kind == "blurred":
        canvas = cv2.GaussianBlur(canvas, (0, 0), float(rng.uniform(1.2, 2.2)))
    elif kind == "noisy":
        noise = rng.normal(0, float(rng.uniform(20, 45)), canvas.shape)
        canvas = np.clip(canvas.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    elif kind == "rotated":
        matrix = cv2.getRotationMatrix2D((x + size / 2, y + size / 2), float(rng.uniform(10, 80)), 1.0)
        canvas = cv2.warpAffine(canvas, matrix, (WIDTH, HEIGHT), borderValue=200)
    elif kind == "perspective":
        corners = np.float32([[x, y], [x + size, y], [x + size, y + size], [x, y + size]])
        moved = corners + rng.uniform(-0.18, 0.18, corners.shape).astype(np.float32) * size
        canvas = cv2.warpPerspective(canvas, cv2.getPerspectiveTransform(corners, moved), (WIDTH, HEIGHT), borderValue=200)
    return canvas


def zxing(gray: np.ndarray) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode) if r.valid]


def readers() -> dict[str, Callable[[np.ndarray], list[str]]]:
    found: dict[str, Callable[[np.ndarray], list[str]]] = {"zxing_cpp": zxing}
    try:
        from pyzbar import pyzbar

        found["pyzbar"] = lambda g: [r.data.decode("latin-1") for r in pyzbar.decode(g, symbols=[pyzbar.ZBarSymbol.QRCODE])]
    except Exception as exc:  # ImportError, or the zbar library is missing
        print(f"pyzbar not available ({exc}); install the bench extra and libzbar0", file=sys.stderr)
    detector = cv2.QRCodeDetector()
    found["opencv"] = lambda g: [t for t in [detector.detectAndDecode(g)[0]] if t]
    found["idsvc_decode_frame"] = qr.decode_frame  # zxing-cpp, then pyzbar when zxing finds nothing
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    frames = []
    for kind in KINDS:
        for _ in range(args.per_kind):
            text = sample_text(rng)
            frames.append((kind, text, frame(text, kind, rng)))
    results: dict[str, dict[str, object]] = {}
    for name, read in readers().items():
        times, per_kind = [], {kind: 0 for kind in KINDS}
        for kind, text, gray in frames:
            start = time.perf_counter()
            decoded = read(gray)
            times.append(time.perf_counter() - start)
            per_kind[kind] += text in decoded
        results[name] = {
            "decoded": sum(per_kind.values()),
            "of": len(frames),
            "median_ms": round(statistics.median(times) * 1000, 2),
            "per_kind": per_kind,
        }
    summary: dict[str, object] = {"frames": f"{len(frames)} at {WIDTH}x{HEIGHT}", "readers": results}
    if "pyzbar" in results:
        z, p = results["zxing_cpp"], results["pyzbar"]
        summary["zxing_vs_pyzbar"] = {
            "speed_ratio": round(float(p["median_ms"]) / float(z["median_ms"]), 2),  # type: ignore[arg-type]
            "decoded_ratio": round(int(z["decoded"]) / max(1, int(p["decoded"])), 2),  # type: ignore[call-overload]
        }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
