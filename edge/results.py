"""What the frame loop hands to everything that watches it (status page, events log, metrics, MQTT).

Observers get plain immutable records, never the loop's internals, so a slow or broken observer can be
dropped without touching the alarm path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class FaceResult:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 pixels in the analysed frame
    label: str  # the classifier's top label: this frame's, or a settled person's latest; "" if ignored
    score: float  # its probability
    scores: dict[str, float]
    keypoints: tuple[tuple[float, float], ...] = ()
    track_id: int | None = None
    decision: str = (
        "pending"  # "pending" | "ok" | "violation" | "ignored" (too small, cut by the edge, outside the ROI)
    )


@dataclass(frozen=True)
class FrameResult:
    index: int
    timestamp: float  # the injected clock's time for this frame
    frame: np.ndarray  # BGR uint8, the analysed frame; observers must not modify it
    faces: tuple[FaceResult, ...]
    stage_ms: dict[str, float] = field(
        default_factory=dict
    )  # "capture", "detect", "classify", "decide", "total"
    fps: float = 0.0
    detection_skipped: bool = False  # motion gate saw a still scene
    # The same moment at the camera's full resolution (picamera2's main stream), a copy made on each
    # call: only during this frame's on_frame/on_event calls. None for sources without one.
    full_frame: Callable[[], np.ndarray | None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class AlarmEvent:
    timestamp: float
    track_id: int
    label: str  # "without_mask" or "mask_weared_incorrect"
    score: float  # mean violation probability over the votes
    track_length: int  # frames the person was seen before the alarm
    face_px: int  # box height in pixels
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    frame: np.ndarray | None = None  # the frame that decided it, for snapshots


class Observer(Protocol):
    """Anything that watches the loop. Called on the loop's thread: return fast, never raise."""

    def on_frame(self, result: FrameResult) -> None: ...

    def on_event(self, event: AlarmEvent) -> None: ...

    def on_camera(self, connected: bool) -> None: ...

    def close(self) -> None: ...
