"""Build the loop's records (FrameResult, FaceResult, AlarmEvent) for observer tests, with short names."""

from __future__ import annotations

import numpy as np

from edge.results import AlarmEvent, FaceResult, FrameResult


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_714_550_400.0):  # 2024-05-01 08:00 UTC, a Wednesday
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def face(
    box=(100.0, 100.0, 200.0, 220.0),
    label="without_mask",
    score=0.9,
    track_id: int | None = 1,
    decision="pending",
) -> FaceResult:
    other = "with_mask" if label != "with_mask" else "without_mask"
    return FaceResult(
        box=tuple(float(v) for v in box),
        label=label,
        score=score,
        scores={label: score, other: round(1 - score, 4)},
        track_id=track_id,
        decision=decision,
    )


def frame_result(index=0, faces=(), image=None, timestamp=0.0, fps=15.0, stage_ms=None) -> FrameResult:
    if image is None:
        image = np.full((480, 640, 3), 90, np.uint8)
    return FrameResult(
        index=index,
        timestamp=timestamp,
        frame=image,
        faces=tuple(faces),
        stage_ms=stage_ms
        if stage_ms is not None
        else {"capture": 1.0, "detect": 2.5, "classify": 1.5, "total": 5.0},
        fps=fps,
    )


def alarm(
    track_id=1, label="without_mask", score=0.9, box=(100.0, 100.0, 200.0, 220.0), image=None, timestamp=0.0
):
    return AlarmEvent(
        timestamp=timestamp,
        track_id=track_id,
        label=label,
        score=score,
        track_length=6,
        face_px=int(box[3] - box[1]),
        box=tuple(float(v) for v in box),
        frame=image,
    )


def textured(shape=(480, 640, 3), level=90, seed=0) -> np.ndarray:
    """A frame with fine noise everywhere, so sharpness and pixelation are measurable."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-40, 40, size=shape[:2], dtype=np.int16)
    return np.clip(level + noise, 0, 255).astype(np.uint8)[..., None].repeat(3, axis=2)
