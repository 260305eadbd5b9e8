"""BlazeFace arithmetic with no I/O: letterboxing, SSD anchors, decoding and weighted NMS.

MediaPipe's BlazeFace models return raw regressions against a fixed anchor grid and logits, not boxes.
Turning those into faces is pure numpy, kept apart from the interpreter so tests can feed it plain
numbers. Inside this module coordinates are pixels of the model input until `Letterbox.to_frame` maps
them back to frame pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

NUM_KEYPOINTS = 6  # right eye, left eye, nose tip, mouth, right ear, left ear (the subject's right)
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
SCORE_CLIP = 100.0  # MediaPipe's score_clipping_thresh: logits are clipped before the sigmoid


@dataclass(frozen=True)
class AnchorSpec:
    """MediaPipe SsdAnchorsCalculator options for one BlazeFace model (fixed_anchor_size, aspect 1).

    With fixed-size anchors only anchor centres matter: every anchor is 1x1 in normalized units, and
    consecutive layers with the same stride share one grid, stacking their anchors per cell.
    """

    input_size: int  # the square input the model ships with
    strides: tuple[int, ...]
    anchors_per_layer: int  # 2 when interpolated_scale_aspect_ratio adds a second anchor, else 1
    resizable: bool  # the network is fully convolutional: any input size that is a multiple of 16 runs


SHORT_RANGE = AnchorSpec(input_size=128, strides=(8, 16, 16, 16), anchors_per_layer=2, resizable=True)
# full-range ends in fixed reshapes, so its input cannot be resized
FULL_RANGE = AnchorSpec(input_size=192, strides=(4,), anchors_per_layer=1, resizable=False)


def generate_anchors(spec: AnchorSpec, width: int | None = None, height: int | None = None) -> np.ndarray:
    """Anchor centres (N, 2) as (x, y) input pixels, in the order the model emits its predictions.

    `width` and `height` default to the model's own square input; a resized short-range model has a
    grid of ceil(size / stride) cells per axis, like MediaPipe's, at each stride.
    """
    width = width or spec.input_size
    height = height or spec.input_size
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        same = 0
        while layer + same < len(spec.strides) and spec.strides[layer + same] == stride:
            same += 1
        cells_x, cells_y = -(-width // stride), -(-height // stride)
        ys, xs = np.meshgrid(np.arange(cells_y), np.arange(cells_x), indexing="ij")
        grid = np.stack([(xs + 0.5) * width / cells_x, (ys + 0.5) * height / cells_y], axis=-1)
        centres.append(
            np.repeat(grid.reshape(-1, 1, 2), same * spec.anchors_per_layer, axis=1).reshape(-1, 2)
        )
        layer += same
    return np.concatenate(centres).astype(np.float32)


def sigmoid_scores(logits: np.ndarray) -> np.ndarray:
    """Face probabilities from raw logits, clipped first as MediaPipe does (no overflow warnings)."""
    clipped = np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)  # exp(100) overflows float32
    return (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)


def logit(probability: float) -> float:
    """The logit of a probability: thresholding logits lets the sigmoid run only on the anchors kept."""
    probability = min(max(probability, 1e-6), 1 - 1e-6)
    return float(np.log(probability / (1.0 - probability)))


def decode(raw: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) as x1, y1, x2, y2 and keypoints (N, 6, 2) as x, y, in input pixels.

    Each raw row is 16 values in input pixels relative to its anchor centre: box centre offset (x, y),
    box size (w, h), then 6 keypoint offsets (x, y).
    """
    raw = raw.astype(np.float32)
    centre = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4 : 4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
    return boxes, keypoints


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x1, y1, x2, y2 box with each row of `boxes`."""
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.maximum(ix2 - ix1, 0) * np.maximum(iy2 - iy1, 0)  # np.clip costs 10x more per call
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every x1, y1, x2, y2 box of `a` (N, 4) with every one of `b` (M, 4): (N, M)."""
    a = np.asarray(a, np.float32).reshape(-1, 1, 4)
    b = np.asarray(b, np.float32).reshape(1, -1, 4)
    iw = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0)
    ih = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0)
    inter = iw * ih

    def area(x):
        return np.maximum(x[..., 2] - x[..., 0], 0) * np.maximum(x[..., 3] - x[..., 1], 0)

    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


NMS_MATRIX_MAX = 512  # up to this many candidates, all IoUs in one N x N matrix; above, row by row


def covered(box: np.ndarray, boxes: np.ndarray, iou: float, inside: float) -> bool:
    """Whether `box` is one of `boxes` (IoU above `iou`) or lies with `inside` of its area in one: the
    same face found again, or a part of it (eyes, a mask) found on its own."""
    if not len(boxes):
        return False
    if (iou_one_to_many(box, boxes) > iou).any():
        return True
    w = np.maximum(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0)
    h = np.maximum(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0)
    area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-6)
    return bool((w * h / area >= inside).any())


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: each cluster of overlapping boxes becomes one score-weighted mean.

    BlazeFace fires several neighbouring anchors per face; averaging them (boxes and keypoints alike)
    is steadier from frame to frame than keeping the single best anchor. The cluster is the best
    remaining box and every remaining box whose IoU with it is above `iou_threshold`; its score is the
    best score. Returns boxes (M, 4), keypoints (M, K, 2) and scores (M,), best first.

    This runs on every frame over a hundred or so candidates, so the means are taken in one pass over
    all clusters: small numpy calls per cluster cost 0.3 ms a frame.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    keypoints = np.asarray(keypoints, np.float32).reshape(len(scores), NUM_KEYPOINTS, 2)
    if not len(scores):
        return boxes, keypoints, scores
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    members = _greedy_clusters(boxes, iou_threshold)  # (clusters, N) one-hot
    weights = members * scores
    unscored = weights.sum(axis=1) <= 0
    weights[unscored] = members[unscored]  # a cluster whose scores are all 0: a plain mean
    weights /= weights.sum(axis=1, keepdims=True)
    means = weights @ np.concatenate([boxes, keypoints.reshape(len(scores), 2 * NUM_KEYPOINTS)], axis=1)
    best = np.argmax(members, axis=1)  # a cluster's first member is its best
    return means[:, :4], means[:, 4:].reshape(len(best), NUM_KEYPOINTS, 2), scores[best]


def _greedy_clusters(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Clusters as rows of a (clusters, N) float32 one-hot matrix, boxes given best first: the best box
    not yet taken starts a cluster and takes every untaken box overlapping it by more than
    `iou_threshold`."""
    count = len(boxes)
    matrix = iou_matrix(boxes, boxes) > iou_threshold if count <= NMS_MATRIX_MAX else None
    clusters = []
    untaken = np.ones(count, bool)
    while untaken.any():
        first = int(np.argmax(untaken))
        row = matrix[first] if matrix is not None else iou_one_to_many(boxes[first], boxes) > iou_threshold
        members = row & untaken
        members[first] = True  # the best box belongs to its own cluster even when it has no area
        clusters.append(members)
        untaken &= ~members
    return np.array(clusters, np.float32).reshape(-1, count)


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into a model input, and how to map results back to frame pixels.

    The frame is scaled keeping its aspect (scale_x and scale_y differ only by rounding to whole
    pixels) and centred with black padding, as MediaPipe does; stretching would squash faces into
    shapes the model never saw.
    """

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Input-pixel coordinates (..., 2) as (x, y) to frame pixels."""
        pad = np.array([self.pad_x, self.pad_y], np.float32)
        return (points - pad) / np.array([self.scale_x, self.scale_y], np.float32)

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Frame-pixel coordinates (..., 2) as (x, y) to input pixels: the inverse of `to_frame`."""
        pad = np.array([self.pad_x, self.pad_y], np.float32)
        return np.asarray(points, np.float32) * np.array([self.scale_x, self.scale_y], np.float32) + pad


def input_shape_for(
    frame_width: int, frame_height: int, long_side: int, multiple: int = 16
) -> tuple[int, int]:
    """(width, height) of a resizable model input whose long side is `long_side`, in the frame's aspect.

    Both sides are rounded up to `multiple` (the model's largest stride), so a 640x480 frame gets a
    256x192 input with no padding at all.
    """
    scale = long_side / max(frame_width, frame_height)
    width = max(multiple, -(-round(frame_width * scale) // multiple) * multiple)
    height = max(multiple, -(-round(frame_height * scale) // multiple) * multiple)
    return width, height


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` resized to `width` x `height`, anti-aliased where it shrinks, and cheap.

    OpenCV's INTER_AREA is fast only for whole-number factors (0.06 ms for 640x480 to 320x240, but
    0.7 ms to 256x192), so the image is halved with it while it is at least twice the target, and the
    last step of less than 2x is bilinear.
    """
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def letterbox(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, Letterbox]:
    """The frame fitted into a `width` x `height` uint8 image (aspect kept, centred, black padding)."""
    frame_h, frame_w = frame.shape[:2]
    scale = min(width / frame_w, height / frame_h)
    new_w, new_h = min(width, max(1, round(frame_w * scale))), min(height, max(1, round(frame_h * scale)))
    resized = resize(frame, new_w, new_h)
    if (new_w, new_h) == (width, height):
        return resized, Letterbox(new_w / frame_w, new_h / frame_h, 0.0, 0.0)
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    fitted = np.zeros((height, width, 3), np.uint8)
    fitted[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return fitted, Letterbox(new_w / frame_w, new_h / frame_h, float(pad_x), float(pad_y))


def crop_windows(
    boxes: np.ndarray, width: int, height: int, sides: tuple[int, ...], context: float
) -> list[tuple[int, int, int]]:
    """Square windows (x0, y0, side) of a `width` x `height` input around each box (x1, y1, x2, y2).

    A window is the smallest of `sides` at least `context` times the box's longer side (the largest
    otherwise, and never more than the input), centred on the box and moved inside the input, so the face
    keeps its scale and its surroundings. Larger boxes are placed first; a box that already lies inside a
    window, with a quarter of its size to spare on every side, gets none of its own. Only a few window
    sides exist, because every input shape costs the runtime a resized interpreter.
    """
    windows: list[tuple[int, int, int]] = []
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    for x1, y1, x2, y2 in sorted(boxes.tolist(), key=lambda b: b[1] - b[3]):
        size = max(x2 - x1, y2 - y1)
        m = size / 4
        if any(
            wx <= x1 - m and wy <= y1 - m and x2 + m <= wx + side and y2 + m <= wy + side
            for wx, wy, side in windows
        ):
            continue
        side = next((s for s in sides if s >= context * size), sides[-1])
        side = min(side, width, height)
        x0 = min(max(round((x1 + x2 - side) / 2), 0), width - side)
        y0 = min(max(round((y1 + y2 - side) / 2), 0), height - side)
        windows.append((x0, y0, side))
    return windows


def region_window(
    region: Sequence[float], width: int, height: int, margin: float, multiple: int = 16
) -> tuple[int, int, int, int] | None:
    """The part (x0, y0, x1, y1) of a `width` x `height` input that holds `region` (x1, y1, x2, y2 in
    input pixels) with `margin` on every side, or None when that is the whole input.

    Its edges are moved out to multiples of `multiple` (the model's largest stride), so that the part's
    anchors are the whole input's own at every stride and a face in it is seen as in the whole input.
    """
    rx1, ry1, rx2, ry2 = (float(v) for v in region)
    x0 = max(math.floor((rx1 - margin) / multiple) * multiple, 0)
    y0 = max(math.floor((ry1 - margin) / multiple) * multiple, 0)
    x1 = min(math.ceil((rx2 + margin) / multiple) * multiple, width)
    y1 = min(math.ceil((ry2 + margin) / multiple) * multiple, height)
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return None
    return x0, y0, x1, y1
