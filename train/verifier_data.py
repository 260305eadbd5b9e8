"""Face / not-a-face crops for the face verifier, mined with BlazeFace itself, kept apart from evaluation.

The verifier judges the detector's uncertain candidates, so its examples are detector candidates too:
the pyramid is run at a low score floor on training frames, and each candidate's crop (made by
edge.preprocess.crop_face with the verifier's spec) is a positive when it overlaps a known face at
IoU >= 0.5 and a negative when it overlaps no face at IoU > 0.1; the ones between are left out.

Training frames, none of them used by bench/detector_eval.py:
- composed 640x480 frames: faces2 images and MaskedFace-Net faces pasted into backgrounds at 40-380 px,
  with pasted non-face patches beside them (so a pasted rectangle's hard edge does not mean "face").
  Left out: every faces2 group and every MaskedFace-Net face id that bench/closeup_faces.csv uses.
  Backgrounds: scikit-image photos that the close-ups do not use (`TRAIN_BACKGROUNDS`), and face-free
  regions of the chosen scenes away from the regions the close-ups use as backgrounds.
- the chosen scenes, as they are: candidates on their annotated faces are positives. Which scenes is
  `scenes` (`SCENE_CHOICES`): a half of bench.detector_data.split_scenes ("train" or "eval"), so that a
  verifier can be scored on the half it never saw, or "all" of them. Candidates away from every annotated box are NOT used as negatives:
  of the top 120 by score, about a third were real faces nobody boxed (crowds, selfies), and a verifier
  taught that those are not faces rejects exactly the faces we want back.
- face parts, as negatives: candidates mostly inside a known face that match it at IoU <= 0.4 (the
  eyes and mask of a face found whole at another scale), and random windows of 40-65% of a face.
- optionally (`lamps_p`, off for the shipped verifier), lamps with their glow and flare drawn into a share
  of the composed frames (train/point_lights.py), so that candidates on them are negatives: the
  backgrounds are daytime photos with no bright lights. Tried, not shipped (docs/detector.md).
- random background patches, as easy negatives.
Scene regions used as backgrounds also avoid every detection scoring REGION_BLOCK_SCORE or more, since
unannotated faces would otherwise become negatives there too.
A source face's box is the best detection on the image padded by 30% per side (the face large in the
model input), found at a low floor so masked faces are boxed as well.
"""

from __future__ import annotations

import csv
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bench.detector_data import (
    FRAME_H,
    FRAME_W,
    SCENE_CHOICES,
    chosen_scenes,
    closeup_frames,
    closeup_list,
)
from edge import blazeface
from edge.config import DetectorConfig
from edge.datasets import load_image_bgr
from edge.faces import COARSE_MIN_FACE_PX, COARSE_SIZE, DetectionPass, FaceDetector
from edge.preprocess import PreprocessSpec, crop_face
from edge.scoring import iou_matrix
from train.point_lights import draw_point_lights, dusk

log = logging.getLogger(__name__)

TRAIN_BACKGROUNDS = ("cat", "moon", "page", "text", "colorwheel", "retina", "stereo_motorcycle", "cell")
DATA_VERSION = 2  # bump when mining changes: the crop cache is keyed by it
# The fine pass the candidates are mined with: the shipped verifier's were mined at 256 px, the detector's
# default before 2026-11-24; mined at its 320 px default now, the threshold rule chose 0.69 and the
# verifier kept more false positives (docs/detector.md, "Lamps as negatives").
MINE_FINE_SIZE = 256
MINE_FLOOR = 0.2  # candidates down to this score are mined (the verifier's band starts above it)
POSITIVE_IOU, NEGATIVE_IOU = 0.5, 0.1
PART_MAX_IOU, PART_INSIDE = 0.4, 0.6  # a candidate this little like a face and this much inside it: a part
REGION_BLOCK_SCORE = 0.35  # background regions avoid scene detections this sure (unannotated faces)
PAD = 0.3  # source images are padded by this much per side before their face is boxed


@dataclass
class CropSet:
    """Verifier examples: crops (N, S, S, 3) uint8 RGB, labels (1 face, 0 not), and where each came from."""

    crops: np.ndarray
    labels: np.ndarray
    sources: list[str]  # composed, scene, patch
    groups: list[str]  # split unit for validation: source image / face group
    scores: np.ndarray  # BlazeFace score of the candidate (1.0 for random patches)
    face_px: np.ndarray  # candidate box height in frame pixels
    summary: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            crops=self.crops,
            labels=self.labels,
            sources=np.array(self.sources),
            groups=np.array(self.groups),
            scores=self.scores,
            face_px=self.face_px,
        )

    @classmethod
    def load(cls, path: Path) -> CropSet:
        d = np.load(path)
        return cls(
            d["crops"],
            d["labels"],
            [str(s) for s in d["sources"]],
            [str(g) for g in d["groups"]],
            d["scores"],
            d["face_px"],
        )


class _Collector:
    def __init__(self, spec: PreprocessSpec):
        self.spec = spec
        self.crops, self.labels, self.sources, self.groups, self.scores, self.face_px = [], [], [], [], [], []

    def add(self, frame: np.ndarray, box, label: int, source: str, group: str, score: float) -> None:
        self.crops.append(crop_face(frame, box, self.spec, "BGR"))
        self.labels.append(label)
        self.sources.append(source)
        self.groups.append(group)
        self.scores.append(score)
        self.face_px.append(float(box[3] - box[1]))

    def result(self) -> CropSet:
        size = self.spec.input_size
        return CropSet(
            np.array(self.crops, np.uint8).reshape(-1, size, size, 3),
            np.array(self.labels, np.int64),
            self.sources,
            self.groups,
            np.array(self.scores, np.float32),
            np.array(self.face_px, np.float32),
        )


def low_floor_faces(detector: FaceDetector, frame: np.ndarray, floor: float = MINE_FLOOR):
    """NMS-merged pyramid candidates down to `floor` in both passes: boxes (N, 4) and scores (N,)."""
    model = detector.models["short_range"]
    passes = (
        DetectionPass("short_range", COARSE_SIZE, floor, min_face_px=COARSE_MIN_FACE_PX),
        DetectionPass("short_range", detector.config.fine_size, floor),
    )
    parts = [model.candidates(frame, p, "BGR") for p in passes]
    boxes = np.concatenate([p.boxes for p in parts])
    keypoints = np.concatenate([p.keypoints for p in parts])
    scores = np.concatenate([p.scores for p in parts])
    boxes, _, scores = blazeface.weighted_nms(boxes, keypoints, scores, detector.config.nms_iou)
    height, width = frame.shape[:2]
    return np.clip(boxes, 0, [width, height, width, height]), scores


def excluded_sources(data_root: Path) -> tuple[set[str], set[str]]:
    """faces2 groups and MaskedFace-Net face ids used by the close-up evaluation frames."""
    used = [face.path for face in closeup_list()]
    group_of = {}
    with open(Path(data_root) / "faces2" / "groups.csv") as f:
        for row in csv.DictReader(f):
            group_of[row["path"]] = row["group"]
    groups = {group_of[p] for p in used if p in group_of}
    ids = {Path(p).name.split("_")[0] for p in used if p.startswith("synthetic_masked/")}
    return groups, ids


def training_sources(data_root: Path) -> list[tuple[str, str]]:
    """(path, group) of every faces2 and MaskedFace-Net image the close-ups do not use."""
    data_root = Path(data_root)
    groups, ids = excluded_sources(data_root)
    sources = []
    with open(data_root / "faces2" / "groups.csv") as f:
        for row in csv.DictReader(f):
            if row["group"] not in groups:
                sources.append((row["path"], "faces2:" + row["group"]))
    for folder in ("correct", "incorrect"):
        for path in sorted((data_root / "synthetic_masked" / folder).glob("*.jpg")):
            face_id = path.name.split("_")[0]
            if face_id not in ids:
                sources.append((f"synthetic_masked/{folder}/{path.name}", "mfn:" + face_id))
    return sources


def source_face_box(detector: FaceDetector, image: np.ndarray) -> tuple[float, float, float, float] | None:
    """The face of a face image: the best low-floor detection on it padded by PAD, if large enough."""
    height, width = image.shape[:2]
    px, py = int(PAD * width), int(PAD * height)
    padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    boxes, scores = low_floor_faces(detector, padded, 0.3)
    boxes = boxes - [px, py, px, py]
    big = (boxes[:, 3] - boxes[:, 1]) >= 0.3 * height
    if not big.any():
        return None
    best = int(np.argmax(np.where(big, scores, -1)))
    return tuple(float(v) for v in boxes[best])


def _skimage_images() -> list[np.ndarray]:
    import skimage.data

    images = []
    for name in TRAIN_BACKGROUNDS:
        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: a stereo pair
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        images.append(np.ascontiguousarray(image[:, :, 2::-1]))
    return images


def _free_regions(scene, avoid, detections, rng: random.Random, tries: int = 30) -> list[np.ndarray]:
    """Up to two regions of a scene away from its face boxes and `detections` (grown by half) and
    from `avoid` (the close-ups' region)."""
    blocked = []
    for x1, y1, x2, y2 in [face.box for face in scene.faces] + [tuple(b) for b in detections]:
        gx, gy = (x2 - x1) / 2, (y2 - y1) / 2
        blocked.append((x1 - gx, y1 - gy, x2 + gx, y2 + gy))
    if avoid is not None:
        blocked.append(avoid)
    image, regions = None, []
    for _ in range(tries):
        w = rng.uniform(0.3, 0.7) * scene.width
        h = w * 3 / 4
        if h > scene.height or w < 100:
            continue
        x, y = rng.uniform(0, scene.width - w), rng.uniform(0, scene.height - h)
        if all(x + w <= a or b <= x or y + h <= c or d <= y for a, c, b, d in blocked):
            image = load_image_bgr(scene.image) if image is None else image
            regions.append(image[int(y) : int(y + h), int(x) : int(x + w)])
            blocked.append((x, y, x + w, y + h))
            if len(regions) == 2:
                break
    return regions


def _background(pool: list[np.ndarray], rng: random.Random) -> np.ndarray:
    source = pool[rng.randrange(len(pool))]
    height, width = source.shape[:2]
    crop_w = int(min(width, height * 4 / 3) * rng.uniform(0.5, 1.0))
    crop_h = int(crop_w * 3 / 4)
    x, y = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    region = source[y : y + crop_h, x : x + crop_w]
    if rng.random() < 0.5:
        region = region[:, ::-1]
    return cv2.resize(region, (FRAME_W, FRAME_H), interpolation=cv2.INTER_LINEAR)


def _compose(sources, pool, rng: random.Random, lamps_p: float = 0.0):
    """One frame with 1-2 pasted faces, 0-2 pasted non-face patches and, in a `lamps_p` share of frames,
    lamps (half of those at dusk): frame, face boxes, their face groups, lamp boxes."""
    frame = _background(pool, rng)
    boxes, rects, groups = [], [], []
    for image, box, group in sources:
        face_h = float(np.exp(rng.uniform(np.log(40), np.log(380))))
        scale = min(
            face_h / (box[3] - box[1]), (FRAME_W - 20) / image.shape[1], (FRAME_H - 10) / image.shape[0]
        )
        w, h = max(8, int(image.shape[1] * scale)), max(8, int(image.shape[0] * scale))
        for _ in range(20):
            x, y = rng.randint(0, FRAME_W - w), rng.randint(0, FRAME_H - h)
            if all(x + w + 8 <= a or c + 8 <= x or y + h + 8 <= b or d + 8 <= y for a, b, c, d in rects):
                frame[y : y + h, x : x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
                fx1, fy1, fx2, fy2 = box
                boxes.append((x + fx1 * scale, y + fy1 * scale, x + fx2 * scale, y + fy2 * scale))
                rects.append((x, y, x + w, y + h))
                groups.append(group)
                break
    for _ in range(rng.randint(0, 2)):
        patch = _background(pool, rng)
        w = rng.randint(40, 260)
        h = int(w * rng.uniform(0.7, 1.4))
        if h >= FRAME_H:
            continue
        px, py = rng.randint(0, FRAME_W - w), rng.randint(0, FRAME_H - h)
        if all(px + w <= a or c <= px or py + h <= b or d <= py for a, b, c, d in rects):
            sx, sy = rng.randint(0, FRAME_W - w), rng.randint(0, FRAME_H - h)
            frame[py : py + h, px : px + w] = patch[sy : sy + h, sx : sx + w]
    lamps = []
    if lamps_p > 0 and rng.random() < lamps_p:  # no draw at 0: the frames stay those of the shipped data
        if rng.random() < 0.5:
            frame = dusk(frame, rng)
        lamps = draw_point_lights(frame, rng, avoid=rects)
    return frame, boxes, groups, lamps


def _label_candidates(boxes, truth) -> np.ndarray:
    """1 positive, 0 negative, 2 part of a face, -1 left out, for each candidate box against the faces.

    A part is a box mostly inside a face and at most PART_MAX_IOU with it: the eyes and mask of a face
    found whole at another scale. The detector reports it as a face of its own, a false positive.
    """
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if len(truth) == 0:
        return np.zeros(len(boxes), np.int64)
    boxes, truth = np.asarray(boxes, np.float64), np.asarray(truth, np.float64)
    best = iou_matrix(boxes, truth).max(axis=1)
    labels = np.where(best >= POSITIVE_IOU, 1, np.where(best <= NEGATIVE_IOU, 0, -1))
    part = (best <= PART_MAX_IOU) & (_inside(boxes, truth).max(axis=1) >= PART_INSIDE)
    return np.where(part & (labels == -1), 2, labels)


def _inside(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N, M): the share of each box's area that lies inside each of `others`."""
    x1 = np.maximum(boxes[:, None, 0], others[None, :, 0])
    y1 = np.maximum(boxes[:, None, 1], others[None, :, 1])
    x2 = np.minimum(boxes[:, None, 2], others[None, :, 2])
    y2 = np.minimum(boxes[:, None, 3], others[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area, 1e-9)[:, None]


def _on_lamp(boxes, lamps) -> np.ndarray:
    """For each candidate: does a drawn lamp's centre lie inside it (the lamp is what it was found on)?"""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(lamps) == 0:
        return np.zeros(len(boxes), bool)
    lamps = np.asarray(lamps, np.float64)
    cx, cy = (lamps[:, 0] + lamps[:, 2]) / 2, (lamps[:, 1] + lamps[:, 3]) / 2
    inside_x = (boxes[:, None, 0] <= cx[None]) & (cx[None] <= boxes[:, None, 2])
    inside_y = (boxes[:, None, 1] <= cy[None]) & (cy[None] <= boxes[:, None, 3])
    return (inside_x & inside_y).any(axis=1)


def _part_of(box, rng: np.random.Generator):
    """A random square window of 40-65% of a face's size inside it: a face part, as a negative."""
    x1, y1, x2, y2 = box
    side = rng.uniform(0.4, 0.65) * min(x2 - x1, y2 - y1)
    x, y = rng.uniform(x1, x2 - side), rng.uniform(y1, y2 - side)
    return (x, y, x + side, y + side)


def _jittered(box, rng: np.random.Generator, amount: float = 0.08):
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    dx, dy, ds = rng.normal(0, amount, 3)
    cx, cy, s = (x1 + x2) / 2 + dx * w, (y1 + y2) / 2 + dy * h, np.exp(ds)
    return (cx - w * s / 2, cy - h * s / 2, cx + w * s / 2, cy + h * s / 2)


def mine(
    data_root: Path,
    spec: PreprocessSpec,
    detector: FaceDetector | None = None,
    frames: int = 2500,
    patches: int = 3000,
    seed: int = 0,
    scenes: str = "train",
    lamps_p: float = 0.0,
) -> CropSet:
    """Every training example, mined from the sources above with `detector` (default pyramid, fine pass
    at MINE_FINE_SIZE), the scene backgrounds and crops from `scenes` (one of SCENE_CHOICES), lamps drawn
    into a `lamps_p` share of the composed frames."""
    if scenes not in SCENE_CHOICES:
        raise ValueError(f"scenes must be one of {SCENE_CHOICES}, got {scenes!r}")
    data_root = Path(data_root)
    detector = detector or FaceDetector(DetectorConfig(fine_size=MINE_FINE_SIZE))
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    out = _Collector(spec)
    closeup_regions: dict[str, tuple[int, int, int, int]] = {}
    closeup_frames(data_root, regions=closeup_regions)
    train_scenes = chosen_scenes(data_root, scenes)

    # backgrounds: unused skimage photos and free regions of the chosen scenes
    pool = _skimage_images()
    scene_candidates = {}
    for scene in train_scenes:
        boxes, scores = low_floor_faces(detector, load_image_bgr(scene.image))
        scene_candidates[scene.image.name] = boxes, scores
        blocking = boxes[scores >= REGION_BLOCK_SCORE]
        pool += _free_regions(scene, closeup_regions.get(scene.image.name), blocking, rng)
    log.info("verifier data: %d backgrounds, %d training scenes (%s)", len(pool), len(train_scenes), scenes)

    # source faces, boxed once
    sources = []
    for path, group in training_sources(data_root):
        image = load_image_bgr(data_root / path)
        box = source_face_box(detector, image)
        if box is not None:
            sources.append((image, box, group))
    log.info("verifier data: %d source faces boxed", len(sources))

    counts: dict[str, int] = {}

    def count(key: str) -> None:
        counts[key] = counts.get(key, 0) + 1

    for index in range(frames):
        picked = [sources[rng.randrange(len(sources))] for _ in range(rng.randint(1, 2))]
        frame, truth, groups, lamps = _compose(picked, pool, rng, lamps_p)
        boxes, scores = low_floor_faces(detector, frame)
        labels = _label_candidates(boxes, truth)
        on_lamp = _on_lamp(boxes, lamps)
        for box, score, label, lamp in zip(boxes, scores, labels, on_lamp, strict=True):
            if label == 1:
                t = int(np.argmax(iou_matrix(np.array([box], np.float64), np.array(truth))[0]))
                out.add(frame, box, 1, "composed", groups[t], float(score))
                out.add(frame, _jittered(box, nrng), 1, "composed", groups[t], float(score))
                count("composed positive")
            elif label == 0 and lamp:
                out.add(frame, box, 0, "lamp", f"frame{index}", float(score))
                count("composed negative on a lamp")
            elif label == 0:
                out.add(frame, box, 0, "composed", f"frame{index}", float(score))
                count("composed negative")
            elif label == 2:
                out.add(frame, box, 0, "part", f"frame{index}", float(score))
                count("composed face part")
        for t, box in enumerate(truth):  # faces the detector missed even at the floor: still faces
            if labels.size == 0 or iou_matrix(np.array([box]), np.asarray(boxes, np.float64)).max() < 0.5:
                out.add(frame, box, 1, "composed", groups[t], 0.0)
                count("composed missed face")
            if index % 2 == 0 and box[3] - box[1] >= 60:
                out.add(frame, _part_of(box, nrng), 0, "part", f"frame{index}", 1.0)
                count("drawn face part")

    for scene in train_scenes:
        image = load_image_bgr(scene.image)
        boxes, scores = scene_candidates[scene.image.name]
        labels = _label_candidates(boxes, [face.box for face in scene.faces])
        for box, score, label in zip(boxes, scores, labels, strict=True):
            if label == 1 and box[3] - box[1] >= 16:
                out.add(image, box, 1, "scene", scene.image.name, float(score))
                out.add(image, _jittered(box, nrng), 1, "scene", scene.image.name, float(score))
                count("scene positive")
            elif label == 2:
                out.add(image, box, 0, "part", scene.image.name, float(score))
                count("scene face part")

    for index in range(patches):
        frame = _background(pool, rng)
        side = float(np.exp(rng.uniform(np.log(24), np.log(400))))
        x, y = rng.uniform(0, FRAME_W - side), rng.uniform(0, FRAME_H - min(side, FRAME_H - 1))
        out.add(frame, (x, y, x + side, y + side), 0, "patch", f"patch{index}", 1.0)
        count("random patch")

    result = out.result()
    result.summary = {
        "counts": counts,
        "sources": len(sources),
        "backgrounds": len(pool),
        "seed": seed,
        "scenes": scenes,
        "scene_images": len(train_scenes),
        "fine_size": detector.config.fine_size,
        "lamps_p": lamps_p,
    }
    log.info("verifier data: %s", counts)
    return result
