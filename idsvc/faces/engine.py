"""The face engine: detect -> 5 landmarks -> similarity alignment -> embedding -> L2 norm -> cosine.

Two detector front ends share one recognizer and one alignment:

- ``faceplugin`` (the default offline pack): a box detector plus a 68-point landmark model, reduced to
  the 5 ArcFace points; preprocessing as measured in design/faces.md.
- ``insightface`` (SCRFD + ArcFace packs such as buffalo_l): SCRFD gives the 5 points directly.

The ``insightface`` Python package is not used: its only parts we need are SCRFD output decoding and
the 5-point alignment (about 60 lines here), while it would pull in opencv-python (which clashes with
opencv-python-headless over the ``cv2`` module), scikit-image, scipy and onnx.

Every onnxruntime session is created once per engine and reused; ``Session.run`` is thread-safe, so
one engine serves all request threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from idsvc.faces.packs import InstalledPack, open_pack

# The standard ArcFace 5-point template in a 112x112 crop: eyes, nose tip, mouth corners.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32
)
ALIGNED_SIZE = 112


class Reason:
    """Why a photo cannot be used (enrolment rejections, door-decision deny reasons)."""

    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    FACE_TOO_SMALL = "face_too_small"
    LOW_QUALITY = "low_quality"
    SPOOF_SUSPECTED = "spoof_suspected"


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # x1, y1, x2, y2 in image pixels (square for the faceplugin front end)
    score: float
    landmarks: np.ndarray  # 5x2: left eye, right eye, nose, left mouth corner, right mouth corner

    @property
    def size(self) -> float:
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


@dataclass(frozen=True)
class QualityPolicy:
    min_face_px: int = 64
    min_sharpness: float = 50.0
    max_landmark_error: float = 0.08  # mean landmark misfit after alignment, as a fraction of the 112 px crop
    liveness_threshold: float = 0.5
    subject_margin: float = 1.3  # a crowded frame's subject: this many times the next face's side, and the most central


@dataclass
class Extraction:
    """Everything one photo yielded: the chosen face, its embedding, quality figures and problems."""

    faces_found: int
    face: Face | None = None
    other_faces: int = 0  # usable faces besides the subject (a queue behind them): verified anyway, reported
    embedding: np.ndarray | None = None
    sharpness: float | None = None
    landmark_error: float | None = None
    liveness: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def spoof_suspected(self) -> bool:
        return Reason.SPOOF_SUSPECTED in self.problems

    @property
    def blocking_problems(self) -> list[str]:
        """Problems that make the face unusable (spoof is a separate, policy-dependent decision)."""
        return [p for p in self.problems if p != Reason.SPOOF_SUSPECTED]

    def quality(self) -> dict[str, float | int | None]:
        return {
            "faces_found": self.faces_found,
            "other_faces": self.other_faces,
            "face_px": round(self.face.size, 1) if self.face else None,
            "detector_score": round(self.face.score, 4) if self.face else None,
            "sharpness": None if self.sharpness is None else round(self.sharpness, 1),
            "landmark_error": None if self.landmark_error is None else round(self.landmark_error, 4),
            "liveness": None if self.liveness is None else round(self.liveness, 4),
        }


def make_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) src -> dst, as 2x3."""
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1  # a reflection would mirror the face; take the best proper rotation instead
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(axis=0).sum()
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]]).astype(np.float32)


def align(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The 112x112 ArcFace crop and the mean landmark misfit (fraction of the crop side)."""
    matrix = umeyama(landmarks, ARCFACE_TEMPLATE)
    crop = cv2.warpAffine(image, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR, borderValue=0)
    mapped = landmarks @ matrix[:, :2].T + matrix[:, 2]
    error = float(np.linalg.norm(mapped - ARCFACE_TEMPLATE, axis=1).mean()) / ALIGNED_SIZE
    return crop, error


def sharpness(aligned: np.ndarray) -> float:
    """Variance of the Laplacian of the aligned grey face: low means blurred or upscaled."""
    grey = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by plain IoU non-maximum suppression, best score first."""
    order = np.argsort(-scores)
    keep = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (areas[i] + areas[order[1:]] - inter + 1e-9)
        order = order[1:][overlap <= iou]
    return np.array(keep, dtype=np.int64)


class FacepluginDetector:
    """fr_detect (boxes) + fr_landmark (68 points -> 5)."""

    SCORE_MIN = 0.65
    NMS_IOU = 0.4

    def __init__(self, detect: Path, landmarks: Path, threads: int) -> None:
        self._detect = make_session(detect, threads)
        self._landmarks = make_session(landmarks, threads)

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        blob = (cv2.resize(image, (320, 240)).astype(np.float32) - 127.0) / 128.0
        scores, boxes = self._detect.run(None, {"input": blob.transpose(2, 0, 1)[None]})
        scores, boxes = scores[0, :, 1], boxes[0] * np.array([width, height, width, height], dtype=np.float32)
        mask = scores >= self.SCORE_MIN
        scores, boxes = scores[mask], boxes[mask]
        faces = []
        for i in _nms(boxes, scores, self.NMS_IOU):  # ranked by score: the biggest box may be a blurred bystander
            box = self._square(boxes[i], width, height)
            if box[2] - box[0] < 8 or box[3] - box[1] < 8:
                continue
            faces.append(Face(box=box, score=float(scores[i]), landmarks=self.landmarks(image, box)))
        return faces

    @staticmethod
    def _square(box: np.ndarray, width: int, height: int) -> np.ndarray:
        side = box[3] - box[1]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x1, y1 = max(cx - side / 2, 0), max(cy - side / 2, 0)
        x2, y2 = min(cx + side / 2, width), min(cy + side / 2, height)
        return np.array([x1, y1, x2, y2], dtype=np.float32)

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        crop = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
        blob = cv2.resize(crop, (64, 64)).astype(np.float32) / 256.0
        points = self._landmarks.run(None, {"input": blob[None, None]})[0].reshape(68, 2)
        points = points * np.array([x2 - x1, y2 - y1], dtype=np.float32) + np.array([x1, y1], dtype=np.float32)
        # iBUG-68 -> ArcFace 5: eye centres from the 4 lid points, nose tip, mouth corners (outer+inner lip).
        return np.stack(
            [
                points[[37, 38, 40, 41]].mean(axis=0),
                points[[43, 44, 46, 47]].mean(axis=0),
                points[30],
                points[[48, 60]].mean(axis=0),
                points[[54, 64]].mean(axis=0),
            ]
        ).astype(np.float32)


class ScrfdDetector:
    """InsightFace SCRFD with keypoints: anchor-free distances at strides 8/16/32, two anchors per cell."""

    SCORE_MIN = 0.5
    NMS_IOU = 0.4
    STRIDES = (8, 16, 32)
    INPUT = 640

    def __init__(self, path: Path, threads: int) -> None:
        self._session = make_session(path, threads)
        self._input_name = self._session.get_inputs()[0].name
        if len(self._session.get_outputs()) != 9:
            raise ValueError(f"{path.name} is not an SCRFD model with 5 keypoints (expected 9 outputs)")

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        scale = self.INPUT / max(height, width)
        resized = cv2.resize(image, (int(width * scale), int(height * scale)))
        canvas = np.zeros((self.INPUT, self.INPUT, 3), dtype=np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128, (self.INPUT, self.INPUT), (127.5, 127.5, 127.5), swapRB=True)
        outputs = [o[0] if o.ndim == 3 else o for o in self._session.run(None, {self._input_name: blob})]
        boxes, scores, points = decode_scrfd(outputs, self.INPUT, self.SCORE_MIN)
        boxes, points = boxes / scale, points / scale
        return [Face(box=boxes[i], score=float(scores[i]), landmarks=points[i]) for i in _nms(boxes, scores, self.NMS_IOU)]


def decode_scrfd(outputs: list[np.ndarray], input_size: int, score_min: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SCRFD raw outputs (3 score, 3 box-distance, 3 keypoint-offset maps) -> boxes, scores, 5x2 points."""
    all_boxes, all_scores, all_points = [], [], []
    levels = len(ScrfdDetector.STRIDES)
    for level, stride in enumerate(ScrfdDetector.STRIDES):
        scores = outputs[level].reshape(-1)
        distances = outputs[level + levels].reshape(-1, 4) * stride
        offsets = outputs[level + 2 * levels].reshape(-1, 10) * stride
        cells = input_size // stride
        centres = (np.stack(np.mgrid[:cells, :cells][::-1], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
        centres = np.repeat(centres, len(scores) // len(centres), axis=0)  # anchors per cell share a centre
        keep = scores >= score_min
        c = centres[keep]
        all_boxes.append(np.hstack([c - distances[keep, :2], c + distances[keep, 2:]]))
        all_points.append(offsets[keep].reshape(-1, 5, 2) + c[:, None, :])
        all_scores.append(scores[keep])
    return np.vstack(all_boxes).astype(np.float32), np.concatenate(all_scores), np.vstack(all_points).astype(np.float32)


class ArcFaceRecognizer:
    """Any ArcFace-compatible ONNX recognizer: aligned 112x112 RGB, (x - mean) / std -> embedding."""

    def __init__(self, path: Path, threads: int, mean: float, std: float) -> None:
        self._session = make_session(path, threads)
        self._input_name = self._session.get_inputs()[0].name
        self._mean, self._std = mean, std
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def raw(self, aligned_bgr: np.ndarray) -> np.ndarray:
        """The model's output, not normalised (its length carries some quality information)."""
        blob = (aligned_bgr[:, :, ::-1].astype(np.float32) - self._mean) / self._std
        return self._session.run(None, {self._input_name: np.ascontiguousarray(blob.transpose(2, 0, 1)[None])})[0][0]

    def embed(self, aligned_bgr: np.ndarray, *, mirror: bool = False) -> np.ndarray:
        """L2-normalised embedding; with mirror, of the sum of the face's and its mirror image's outputs."""
        vector = self.raw(aligned_bgr)
        if mirror:
            vector = vector + self.raw(aligned_bgr[:, ::-1])
        return (vector / np.linalg.norm(vector)).astype(np.float32)


class TfliteRecognizer:
    """MobileFaceNet as published in TensorFlow Lite (192-d; the model takes a pair of faces).

    ai-edge-litert's interpreter is not thread-safe: one lock per model (an embedding takes ~5 ms).
    """

    def __init__(self, path: Path, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter  # only packs with such a model need it

        self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._lock = threading.Lock()
        self.dim = int(self._output["shape"][-1])

    def raw(self, aligned_bgr: np.ndarray) -> np.ndarray:
        x = (aligned_bgr[:, :, ::-1].astype(np.float32) - 127.5) / 128.0
        batch = np.repeat(x[None], self._input["shape"][0], axis=0)
        with self._lock:
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"])[0].astype(np.float32)

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        vector = self.raw(aligned_bgr)
        return (vector / np.linalg.norm(vector)).astype(np.float32)


class FusedRecognizer:
    """Two recognizers as one: both unit embeddings side by side, scaled to unit length, so the
    cosine of two templates is the mean of the two models' cosines (score fusion; benchmarks.md)."""

    def __init__(self, first: ArcFaceRecognizer, second: TfliteRecognizer) -> None:
        self._models = (first, second)
        self.dim = first.dim + second.dim

    def raw(self, aligned_bgr: np.ndarray) -> np.ndarray:
        parts = [m.raw(aligned_bgr) for m in self._models]
        return (np.concatenate([v / np.linalg.norm(v) for v in parts]) / np.sqrt(len(parts))).astype(np.float32)

    def embed(self, aligned_bgr: np.ndarray, *, mirror: bool = False) -> np.ndarray:
        vector = self.raw(aligned_bgr)
        if mirror:
            vector = vector + self.raw(aligned_bgr[:, ::-1])
        return (vector / np.linalg.norm(vector)).astype(np.float32)


class LivenessModel:
    """fr_liveness: the square box enlarged 2.7x, 128x128, raw BGR 0-255; score = P(live)."""

    ENLARGE = 2.7

    def __init__(self, path: Path, threads: int) -> None:
        self._session = make_session(path, threads)

    def score(self, image: np.ndarray, face: Face) -> float:
        height, width = image.shape[:2]
        box_w, box_h = face.box[2] - face.box[0], face.box[3] - face.box[1]
        # As the pack's own code: shrink the enlargement rather than clip, then slide the window inside the frame.
        scale = min((height - 1) / box_h, (width - 1) / box_w, self.ENLARGE)
        win_w, win_h = box_w * scale, box_h * scale
        x1 = float(np.clip((face.box[0] + face.box[2]) / 2 - win_w / 2, 0, width - 1 - win_w))
        y1 = float(np.clip((face.box[1] + face.box[3]) / 2 - win_h / 2, 0, height - 1 - win_h))
        x1, y1, x2, y2 = int(x1), int(y1), int(x1 + win_w), int(y1 + win_h)
        blob = cv2.resize(image[y1:y2, x1:x2], (128, 128)).astype(np.float32)
        logits = self._session.run(None, {"input": blob.transpose(2, 0, 1)[None]})[0][0].astype(np.float64)
        if not (np.all(logits >= 0) and abs(logits.sum() - 1) < 1e-3):  # raw logits: apply the softmax ourselves
            logits = np.exp(logits - logits.max())
            logits /= logits.sum()
        return float(logits[0])


class FaceEngine:
    """One loaded pack: detector, recognizer and (if the pack has one) liveness model."""

    def __init__(self, pack: InstalledPack, threads: int = 1) -> None:
        self.pack = pack.name
        if pack.kind == "faceplugin":
            self.detector: FacepluginDetector | ScrfdDetector = FacepluginDetector(pack.files["detector"], pack.files["landmarks"], threads)
            self.recognizer: ArcFaceRecognizer | FusedRecognizer = ArcFaceRecognizer(pack.files["recognizer"], threads, mean=127.0, std=128.0)
            if "recognizer_aux" in pack.files:
                self.recognizer = FusedRecognizer(self.recognizer, TfliteRecognizer(pack.files["recognizer_aux"], threads))
        elif pack.kind == "insightface":
            self.detector = ScrfdDetector(pack.files["detector"], threads)
            self.recognizer = ArcFaceRecognizer(pack.files["recognizer"], threads, mean=127.5, std=127.5)
        else:
            raise ValueError(f"unknown pack kind {pack.kind!r}")
        self.liveness = LivenessModel(pack.files["liveness"], threads) if "liveness" in pack.files else None
        self.dim = self.recognizer.dim

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detector.detect(image)

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        return self.recognizer.embed(align(image, face.landmarks)[0])

    def extract(self, image: np.ndarray, policy: QualityPolicy, *, check_liveness: bool = True) -> Extraction:
        """Detect, gate on quality, and embed the one usable face of a photo."""
        faces = self.detect(image)
        result = Extraction(faces_found=len(faces))
        if not faces:
            result.problems.append(Reason.NO_FACE)
            return result
        # Small faces in the background (passers-by) do not make a photo ambiguous; a second usable one
        # does, unless one face is clearly the subject (the person in front of the camera).
        usable = [f for f in faces if f.size >= policy.min_face_px]
        if len(usable) > 1:
            subject = select_subject(usable, image.shape[1], image.shape[0], policy.subject_margin)
            if subject is None:
                result.problems.append(Reason.MULTIPLE_FACES)
                return result
            usable, result.other_faces = [subject], len(usable) - 1
        face = usable[0] if usable else faces[0]
        result.face = face
        if not usable:
            result.problems.append(Reason.FACE_TOO_SMALL)
            return result
        aligned, result.landmark_error = align(image, face.landmarks)
        result.sharpness = sharpness(aligned)
        if result.landmark_error > policy.max_landmark_error or result.sharpness < policy.min_sharpness:
            result.problems.append(Reason.LOW_QUALITY)
            return result
        if check_liveness and self.liveness is not None:
            result.liveness = self.liveness.score(image, face)
            if result.liveness < policy.liveness_threshold:
                result.problems.append(Reason.SPOOF_SUSPECTED)
        result.embedding = self.recognizer.embed(aligned)
        return result


def select_subject(faces: list[Face], width: int, height: int, margin: float) -> Face | None:
    """The face that is clearly the subject of a crowded frame, or None when that is ambiguous: the
    largest face, at least `margin` times the side of the next largest, and no farther from the frame's
    centre than any other face (a big face at the edge is a passer-by leaning in, not the subject)."""
    ranked = sorted(faces, key=lambda f: f.size, reverse=True)
    largest, runner_up = ranked[0], ranked[1]
    if largest.size < margin * runner_up.size:
        return None
    centre = np.array([width / 2, height / 2], dtype=np.float32)

    def off_centre(face: Face) -> float:
        return float(np.linalg.norm((face.box[:2] + face.box[2:]) / 2 - centre))

    if any(off_centre(other) < off_centre(largest) for other in ranked[1:]):
        return None
    return largest


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))  # both are L2-normalised


_engines: dict[tuple[Path, str, int], FaceEngine] = {}
_engines_lock = threading.Lock()


def get_engine(models_dir: Path, pack: str, threads: int) -> FaceEngine:
    """The process-wide engine for a pack: loading sessions costs ~0.5 s, so it happens once."""
    key = (models_dir.resolve(), pack, threads)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = FaceEngine(open_pack(models_dir, pack), threads)
        return engine
