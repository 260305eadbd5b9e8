"""Evaluation frames for the face detector: the VOC scenes, and close-up 640x480 frames we compose.

The shared scenes are small photos with small faces (median 22 px), while an entrance camera also sees
faces that fill the frame. So besides the scenes we paste the hand-picked faces2 crops listed in
bench/closeup_faces.csv into 640x480 backgrounds, their faces 32 to 400 px tall, seeded so every run sees
the same frames. Backgrounds are scikit-image's face-free sample photos and face-free regions of the
scenes, upscaled; some frames hold no face at all, to count false positives.

faces2 crops are loose in different ways, so the pasted region is not the face box. Each listed crop
carries a face box found where detection is easy (the crop alone, padded, face large in the model
input) and then checked by eye; pasted at another size and place, the same face must be found again.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.datasets import Scene, load_image_bgr, read_voc_scenes

FRAME_W, FRAME_H = 640, 480
CLOSEUP_LIST = Path(__file__).with_name("closeup_faces.csv")
# face heights to paste at, one placement per range for every face (the first only for every second face)
PASTE_RANGES = ((32, 63), (64, 127), (128, 255), (256, 400))
SCENE_SPLIT_SEED = 0
SCENE_CHOICES = ("train", "eval", "all")  # a half of split_scenes, or every scene: what a model learns from
SKIMAGE_BACKGROUNDS = (
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "clock",
    "brick",
    "grass",
    "gravel",
    "coins",
)


@dataclass(frozen=True)
class EvalFrame:
    """One frame to detect in, with its faces: boxes (x1, y1, x2, y2 pixels) and labels."""

    name: str
    image: np.ndarray  # BGR uint8
    boxes: tuple[tuple[float, float, float, float], ...]
    labels: tuple[str, ...]
    sources: tuple[str, ...] = ()  # the pasted crop of each box (close-up frames)


def scene_frames(data_root: Path) -> list[EvalFrame]:
    """Every VOC scene at its own size (246 to 600 px wide), boxes as annotated."""
    frames = []
    for scene in read_voc_scenes(Path(data_root) / "scenes"):
        frames.append(
            EvalFrame(
                name=scene.image.name,
                image=load_image_bgr(scene.image),
                boxes=tuple(face.box for face in scene.faces),
                labels=tuple(face.label for face in scene.faces),
            )
        )
    return frames


def _skimage_backgrounds() -> list[np.ndarray]:
    import skimage.data

    images = []
    for name in SKIMAGE_BACKGROUNDS:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        images.append(np.ascontiguousarray(image[:, :, 2::-1]))  # RGB to BGR
    return images


def split_scenes(names: list[str], seed: int = SCENE_SPLIT_SEED) -> dict[str, str]:
    """Each scene image name to "train" or "eval": a seeded half each, by image.

    The face verifier (train/verifier.py) learns from the "train" half only, so detector numbers with
    the verifier on are honest on the "eval" half (`python -m bench.detector_eval --scenes eval`).
    """
    names = sorted(names)
    random.Random(seed).shuffle(names)
    half = len(names) // 2
    return {name: ("train" if i < half else "eval") for i, name in enumerate(names)}


def chosen_scenes(data_root: Path, scenes: str) -> list[Scene]:
    """The VOC scenes of `scenes` (SCENE_CHOICES): the "train" or "eval" half of split_scenes, or "all",
    in file order."""
    if scenes not in SCENE_CHOICES:
        raise ValueError(f"scenes must be one of {SCENE_CHOICES}, got {scenes!r}")
    every = read_voc_scenes(Path(data_root) / "scenes")
    half = split_scenes([s.image.name for s in every])
    return [s for s in every if scenes == "all" or half[s.image.name] == scenes]


def _scene_background(
    scene: Scene, rng: random.Random, regions: dict[str, tuple[int, int, int, int]] | None = None
) -> np.ndarray | None:
    """A 4:3 region of a scene that overlaps no face box grown by half its size, or None.

    `regions`, when given, records the region taken (image name to x1, y1, x2, y2).
    """
    width, height = scene.width, scene.height
    grown = []
    for face in scene.faces:
        x1, y1, x2, y2 = face.box
        grow_x, grow_y = (x2 - x1) / 2, (y2 - y1) / 2
        grown.append((x1 - grow_x, y1 - grow_y, x2 + grow_x, y2 + grow_y))
    for _ in range(50):
        crop_w = rng.uniform(0.35, 0.8) * width
        crop_h = crop_w * 3 / 4
        if crop_h > height:
            continue
        x, y = rng.uniform(0, width - crop_w), rng.uniform(0, height - crop_h)
        if all(x + crop_w <= a or b <= x or y + crop_h <= c or d <= y for a, c, b, d in grown):
            if regions is not None:
                regions[scene.image.name] = (int(x), int(y), int(x + crop_w), int(y + crop_h))
            return load_image_bgr(scene.image)[int(y) : int(y + crop_h), int(x) : int(x + crop_w)]
    return None


def backgrounds(
    data_root: Path, count: int, rng: random.Random, regions: dict | None = None
) -> list[np.ndarray]:
    """`count` face-free 640x480 backgrounds: skimage photos (random crops) and scene regions.

    `regions`, when given, records the scene regions used (image name to x1, y1, x2, y2).
    """
    pool = _skimage_backgrounds()
    scenes = read_voc_scenes(Path(data_root) / "scenes")
    rng.shuffle(scenes)
    for scene in scenes:
        if len(pool) >= count // 2 + len(SKIMAGE_BACKGROUNDS):
            break
        taken: dict[str, tuple[int, int, int, int]] = {}
        region = _scene_background(scene, rng, taken)
        if region is not None and region.shape[1] >= 120:
            pool.append(region)
            if regions is not None:
                regions.update(taken)
    result = []
    for i in range(count):
        source = pool[i % len(pool)]
        height, width = source.shape[:2]
        crop_w = min(width, int(height * 4 / 3))
        crop_w = int(crop_w * rng.uniform(0.7, 1.0))
        crop_h = int(crop_w * 3 / 4)
        x, y = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
        region = source[y : y + crop_h, x : x + crop_w]
        if rng.random() < 0.5:
            region = region[:, ::-1]
        result.append(cv2.resize(region, (FRAME_W, FRAME_H), interpolation=cv2.INTER_LINEAR))
    return result


@dataclass(frozen=True)
class CloseupFace:
    path: str  # relative to the data folder
    label: str
    box: tuple[float, float, float, float]  # the face in the crop's own pixels


def closeup_list(path: Path = CLOSEUP_LIST) -> list[CloseupFace]:
    """Every curated faces2 crop with its checked face box."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [
        CloseupFace(row["path"], row["label"], tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2")))
        for row in csv.DictReader(lines)
    ]


def _placements(faces: list[CloseupFace], rng: random.Random) -> list[tuple[CloseupFace, float]]:
    """(face, target face height in px): one per size range for each face, the smallest for every second."""
    placements = []
    for index, face in enumerate(faces):
        for low, high in PASTE_RANGES:
            if low < 64 and index % 2:
                continue
            placements.append((face, float(np.exp(rng.uniform(np.log(low), np.log(high + 1))))))
    rng.shuffle(placements)
    return placements


def _fits(box: tuple[int, int, int, int], taken: list[tuple[int, int, int, int]], gap: int = 16) -> bool:
    x1, y1, x2, y2 = box
    return all(x2 + gap <= a or c + gap <= x1 or y2 + gap <= b or d + gap <= y1 for a, b, c, d in taken)


def _paste_size(face: CloseupFace, crop_w: int, crop_h: int, face_height: float) -> tuple[int, int]:
    """Size of the pasted crop that makes its face `face_height` tall, shrunk to fit in the frame."""
    scale = face_height / (face.box[3] - face.box[1])
    scale = min(scale, (FRAME_W - 20) / crop_w, (FRAME_H - 10) / crop_h)
    return max(4, int(round(crop_w * scale))), max(4, int(round(crop_h * scale)))


def closeup_frames(
    data_root: Path, seed: int = 0, empty_frames: int = 40, regions: dict | None = None
) -> list[EvalFrame]:
    """Curated faces2 crops pasted into 640x480 backgrounds, up to 3 per frame, plus empty frames.

    The ground-truth box of a pasted face is its checked box scaled and moved with the crop (clipped
    to the pasted crop), so detections are scored at IoU 0.5 as in the scenes. `regions`, when given,
    records the scene regions used as backgrounds (image name to x1, y1, x2, y2), which the face
    verifier must not learn from.
    """
    rng = random.Random(seed)
    data_root = Path(data_root)
    crops = {face.path: load_image_bgr(data_root / face.path) for face in closeup_list()}
    pending = _placements(closeup_list(), rng)
    layouts: list[list[tuple[CloseupFace, tuple[int, int, int, int]]]] = []
    while pending:
        layout: list[tuple[CloseupFace, tuple[int, int, int, int]]] = []
        for placement in list(pending):
            face, face_height = placement
            crop_h, crop_w = crops[face.path].shape[:2]
            width, height = _paste_size(face, crop_w, crop_h, face_height)
            for _ in range(20):
                x, y = rng.randint(0, FRAME_W - width), rng.randint(0, FRAME_H - height)
                if _fits((x, y, x + width, y + height), [box for _, box in layout]):
                    layout.append((face, (x, y, x + width, y + height)))
                    pending.remove(placement)
                    break
            if len(layout) == 3 or (layout and layout[0][1][3] - layout[0][1][1] > 240):
                break  # a face filling half the frame stands alone
        if not layout:
            raise AssertionError(f"cannot place {pending[0]}")  # a single crop always fits
        layouts.append(layout)
    canvases = backgrounds(data_root, len(layouts) + empty_frames, rng, regions)
    frames = []
    for index, layout in enumerate(layouts):
        canvas, boxes = canvases[index].copy(), []
        for face, (x1, y1, x2, y2) in layout:
            crop = crops[face.path]
            canvas[y1:y2, x1:x2] = cv2.resize(crop, (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA)
            sx, sy = (x2 - x1) / crop.shape[1], (y2 - y1) / crop.shape[0]
            fx1, fy1, fx2, fy2 = face.box
            boxes.append(
                (
                    max(x1, x1 + fx1 * sx),
                    max(y1, y1 + fy1 * sy),
                    min(x2, x1 + fx2 * sx),
                    min(y2, y1 + fy2 * sy),
                )
            )
        frames.append(
            EvalFrame(
                name=f"closeup_{index:04d}",
                image=canvas,
                boxes=tuple(boxes),
                labels=tuple(face.label for face, _ in layout),
                sources=tuple(face.path for face, _ in layout),
            )
        )
    for index in range(empty_frames):
        frames.append(EvalFrame(f"empty_{index:04d}", canvases[len(layouts) + index], (), ()))
    return frames
