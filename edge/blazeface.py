"""BlazeFace arithmetic with no I/O: letterboxing, SSD anchors, decoding and weighted NMS.

MediaPipe's BlazeFace models return raw regressions against a fixed anchor grid and logits, not boxes.
Turning those into faces is pure numpy, kept apart from the interpreter so tests can feed it plain
numbers. Coordinates inside this module are normalized to the model's square input (0..1) until
`Letterbox.to_frame` maps them back to frame pixels.
"""

from __future__ import annotations

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

    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # 2 when interpolated_scale_aspect_ratio adds a second anchor, else 1
    expected_count: int


SHORT_RANGE = AnchorSpec(input_size=128, strides=(8, 16, 16, 16), anchors_per_layer=2, expected_count=896)
FULL_RANGE = AnchorSpec(input_size=192, strides=(4,), anchors_per_layer=1, expected_count=2304)


def generate_anchors(spec: AnchorSpec) -> np.ndarray:
    """Anchor centres (N, 2) as (x, y) in 0..1, in the order the model emits its predictions."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        same = 0
        while layer + same < len(spec.strides) and spec.strides[layer + same] == stride:
            same += 1
        per_cell = same * spec.anchors_per_layer
        cells = int(np.ceil(spec.input_size / stride))
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
        layer += same
    anchors = np.concatenate(centres).astype(np.float32)
    if len(anchors) != spec.expected_count:
        raise AssertionError(f"anchor spec gives {len(anchors)} anchors, expected {spec.expected_count}")
    return anchors


def sigmoid_scores(logits: np.ndarray) -> np.ndarray:
    """Face probabilities from raw logits, clipped first as MediaPipe does (no overflow warnings)."""
    clipped = np.clip(logits.astype(np.float32), -SCORE_CLIP, SCORE_CLIP)
    return 1.0 / (1.0 + np.exp(-clipped))


def decode(raw: np.ndarray, anchors: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) as x1, y1, x2, y2 and keypoints (N, 6, 2) as x, y, all normalized to 0..1.

    Each raw row is 16 values in input pixels relative to its anchor centre: box centre offset (x, y),
    box size (w, h), then 6 keypoint offsets (x, y).
    """
    raw = raw.astype(np.float32) / np.float32(input_size)
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
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: each cluster of overlapping boxes becomes one score-weighted mean.

    BlazeFace fires several neighbouring anchors per face; averaging them (boxes and keypoints alike)
    is steadier from frame to frame than keeping the single best anchor. The cluster is every remaining
    box whose IoU with the best remaining one is above `iou_threshold`; its score is the best score.
    Returns boxes (M, 4), keypoints (M, K, 2) and scores (M,), best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    out_boxes, out_keypoints, out_scores = [], [], []
    remaining = np.arange(len(scores))
    while remaining.size:
        overlaps = iou_one_to_many(boxes[remaining[0]], boxes[remaining])
        cluster = remaining[overlaps > iou_threshold]
        if cluster.size == 0 or cluster[0] != remaining[0]:  # a degenerate (zero-area) best box
            cluster = np.concatenate([remaining[:1], cluster[cluster != remaining[0]]])
        weights = scores[cluster] / scores[cluster].sum() if scores[cluster].sum() > 0 else None
        out_boxes.append(np.average(boxes[cluster], axis=0, weights=weights))
        out_keypoints.append(np.average(keypoints[cluster], axis=0, weights=weights))
        out_scores.append(scores[cluster[0]])
        remaining = remaining[~np.isin(remaining, cluster)]
    if not out_scores:
        return (
            np.zeros((0, 4), np.float32),
            np.zeros((0,) + keypoints.shape[1:], np.float32),
            np.zeros(0, np.float32),
        )
    return (
        np.array(out_boxes, np.float32),
        np.array(out_keypoints, np.float32),
        np.array(out_scores, np.float32),
    )


@dataclass(frozen=True)
class Letterbox:
    """How a frame region was fitted into the model's square input, and how to map results back.

    The region at (offset_x, offset_y) in frame pixels is scaled keeping its aspect (scale_x and
    scale_y differ only by rounding to whole pixels) and centred in the square with black padding, as MediaPipe does; stretching would squash
    faces into shapes the model never saw.
    """

    input_size: int
    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    offset_x: float = 0.0
    offset_y: float = 0.0

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Normalized (..., 2) model coordinates (x, y) to frame pixels."""
        pixels = points * self.input_size - np.array([self.pad_x, self.pad_y], np.float32)
        return pixels / np.array([self.scale_x, self.scale_y], np.float32) + np.array(
            [self.offset_x, self.offset_y], np.float32
        )


def letterbox(
    frame: np.ndarray, input_size: int, region: tuple[int, int, int, int] | None = None
) -> tuple[np.ndarray, Letterbox]:
    """The frame (or the region x1, y1, x2, y2 of it) fitted into a square uint8 image of `input_size`."""
    x1, y1, x2, y2 = region if region is not None else (0, 0, frame.shape[1], frame.shape[0])
    view = frame[y1:y2, x1:x2]
    height, width = view.shape[:2]
    scale = input_size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(view, (new_w, new_h), interpolation=interpolation)
    pad_x, pad_y = (input_size - new_w) // 2, (input_size - new_h) // 2
    square = np.zeros((input_size, input_size, 3), np.uint8)
    square[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return square, Letterbox(input_size, new_w / width, new_h / height, pad_x, pad_y, float(x1), float(y1))
