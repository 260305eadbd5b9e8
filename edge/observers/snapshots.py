"""Violation snapshots: the best frame of each alarm as a JPEG, with other people's faces pixelated.

Off by default, for privacy. While a person is tracked, the observer remembers references to the few
frames in which their face looked best by a cheap measure (area x violation probability); when the alarm
fires, a background thread scores those candidates properly (largest, sharpest, highest score), blurs the
other faces, writes the JPEG and then applies retention (days, total MB). A full disk stops the saving
with one log line (see edge.observers.storage.DiskGuard); the alarm never waits for any of it.

Candidates are judged on the analysis frame, but where the source has a full-resolution view of the same
moment (picamera2's main stream, `camera.snapshot_width` x `snapshot_height`), a candidate that looks
like a violation also keeps a copy of that, and the JPEG is drawn on it, the boxes scaled from analysis
to snapshot pixels. That copy (1280x960: 3.7 MB, about a millisecond) is made at most once per frame and
only while someone in it looks like a violator; other sources' snapshots are the analysis frame.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.atomic_files import write_atomic
from edge.observers.storage import DiskGuard, delete_cut_off_writes, prune_files
from edge.observers.worker import BackgroundWorker
from edge.results import AlarmEvent, FaceResult, FrameResult

log = logging.getLogger(__name__)

VIOLATION_LABELS = ("without_mask", "mask_weared_incorrect")
CANDIDATES_PER_TRACK = 3
FORGET_AFTER_FRAMES = 300  # a track unseen this many frames is dropped with its candidates
FULL_FRAME_MIN_SCORE = 0.5  # below this violation probability a candidate keeps no full-resolution copy
RETENTION_EVERY_S = 3600.0  # retention also runs this often without new snapshots, so old ones still go


@dataclass(frozen=True)
class Candidate:
    rough_quality: float
    frame: np.ndarray
    box: tuple[float, float, float, float]
    score: float  # violation probability
    others: tuple[tuple[float, float, float, float], ...]  # the other faces' boxes in that frame
    index: int
    full: np.ndarray | None = None  # the same moment at full resolution, where the source has one


def violation_probability(face: FaceResult) -> float:
    return max((face.scores.get(label, 0.0) for label in VIOLATION_LABELS), default=0.0) or (
        face.score if face.label in VIOLATION_LABELS else 0.0
    )


def box_area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def clip_box(box, shape) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return max(0, x1), max(0, y1), min(w, x2), min(h, y2)


def sharpness(frame: np.ndarray, box) -> float:
    """Variance of the Laplacian of the face, resized to 96x96 so faces of different sizes compare."""
    x1, y1, x2, y2 = clip_box(box, frame.shape)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    gray = cv2.cvtColor(frame[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (96, 96), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def pick_best(candidates: list[Candidate]) -> Candidate:
    """Largest, sharpest, highest score, equally weighted: the product of each relative to the best."""
    measures = [(box_area(c.box), sharpness(c.frame, c.box), c.score) for c in candidates]
    tops = [max(m[i] for m in measures) or 1.0 for i in range(3)]
    quality = [(a / tops[0]) * (s / tops[1]) * (p / tops[2]) for a, s, p in measures]
    return candidates[int(np.argmax(quality))]


def pixelate(image: np.ndarray, box) -> None:
    """Replace a face by 8x8 blocks in place: unlike a blur, nothing of it can be sharpened back."""
    x1, y1, x2, y2 = clip_box(box, image.shape)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return
    small = cv2.resize(image[y1:y2, x1:x2], (8, 8), interpolation=cv2.INTER_AREA)
    image[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)


def scale_box(box, sx: float, sy: float) -> tuple[float, float, float, float]:
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


def render_snapshot(best: Candidate, label: str, blur_others: bool) -> np.ndarray:
    """The candidate's full-resolution frame if it has one, else its analysis frame, with the boxes
    scaled from analysis to that frame's pixels (both streams see the same field of view)."""
    source = best.full if best.full is not None else best.frame
    sy, sx = (s / a for s, a in zip(source.shape[:2], best.frame.shape[:2], strict=True))
    image = source.copy()
    if blur_others:
        for other in best.others:
            pixelate(image, scale_box(other, sx, sy))
    x1, y1, x2, y2 = clip_box(scale_box(best.box, sx, sy), image.shape)
    zoom = max(1.0, image.shape[1] / 640)  # the label reads the same at any resolution
    cv2.rectangle(image, (x1, y1), (x2, y2), (0, 0, 255), round(2 * zoom))
    cv2.putText(
        image,
        f"{label} {best.score:.2f}",
        (x1, max(round(12 * zoom), y1 - round(6 * zoom))),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5 * zoom,
        (0, 0, 255),
        round(zoom),
        cv2.LINE_AA,
    )
    return image


class SnapshotSaver:
    """Observer that keeps each track's best-looking frames; `save` writes the best one for an alarm."""

    def __init__(
        self,
        directory: Path,
        *,
        keep_days: float = 7.0,
        max_bytes: float = 200e6,
        blur_others: bool = True,
        clock: Callable[[], float] = time.time,
        guard: DiskGuard | None = None,
        jpeg_quality: int = 90,
    ):
        self.directory = Path(directory)
        self.keep_days = keep_days
        self.max_bytes = max_bytes
        self.blur_others = blur_others
        self.jpeg_quality = jpeg_quality
        self.guard = guard or DiskGuard("snapshots")
        self.saved = 0
        self._clock = clock
        self._tracks: dict[int, list[Candidate]] = {}
        self._last_seen: dict[int, int] = {}
        self._current: FrameResult | None = None  # the frame being observed, for its full-resolution copy
        self._current_full: np.ndarray | None = None
        self._worker = BackgroundWorker("snapshots", max_jobs=8)
        self._worker.submit(self._prepare)
        self._next_retention = clock() + RETENTION_EVERY_S

    # -- Observer -----------------------------------------------------------------------------------------

    def on_frame(self, result: FrameResult) -> None:
        """O(faces): remember the frame reference if it is among this track's best so far."""
        self._current, self._current_full = result, None
        boxes = [f.box for f in result.faces]
        for i, face in enumerate(result.faces):
            if face.track_id is None:
                continue
            self._last_seen[face.track_id] = result.index
            score = violation_probability(face)
            rough = box_area(face.box) * score
            kept = self._tracks.setdefault(face.track_id, [])
            if len(kept) >= CANDIDATES_PER_TRACK and rough <= kept[-1].rough_quality:
                continue
            others = tuple(b for j, b in enumerate(boxes) if j != i)
            full = self._full_frame(result.frame) if score >= FULL_FRAME_MIN_SCORE else None
            kept.append(Candidate(rough, result.frame, face.box, score, others, result.index, full))
            kept.sort(key=lambda c: -c.rough_quality)
            del kept[CANDIDATES_PER_TRACK:]
        if result.index % 30 == 0:
            self._forget_old_tracks(result.index)
        self._retention_due()

    def on_event(self, event: AlarmEvent) -> None:
        pass  # the events log calls `save` so the log line can name the file

    def on_camera(self, connected: bool) -> None:
        pass

    def close(self) -> None:
        self._worker.close()

    # -- saving ---------------------------------------------------------------------------------------------

    def save(self, event: AlarmEvent, event_id: str) -> str | None:
        """Queue the snapshot of `event`; returns the file name it will have, None if saving is stopped."""
        if self.guard.is_stopped:
            return None
        candidates = list(self._tracks.get(event.track_id, ()))
        if event.frame is not None and not any(c.frame is event.frame for c in candidates):
            full = self._full_frame(event.frame)
            candidates.append(Candidate(0.0, event.frame, event.box, float(event.score), (), -1, full))
        if not candidates:
            log.warning("snapshot for track %d skipped: no frame of it was kept", event.track_id)
            return None
        name = f"{event_id}_{event.label}.jpg"
        self._worker.submit(lambda: self._write(candidates, event.label, name))
        return name

    def flush(self, timeout: float = 5.0) -> bool:
        return self._worker.drain(timeout)

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jpg"))

    def _write(self, candidates: list[Candidate], label: str, name: str) -> None:
        best = pick_best(candidates)
        image = render_snapshot(best, label, self.blur_others)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            log.error("snapshot %s: JPEG encoding failed", name)
            return
        path = self.directory / name
        if self.guard.attempt(lambda: write_atomic(path, jpeg.tobytes()), path):
            self.saved += 1
            self._apply_retention()

    def _full_frame(self, frame: np.ndarray) -> np.ndarray | None:
        """`frame` at full resolution if it is the frame being observed and its source has one; one copy
        per frame, shared by every candidate taken from it."""
        current = self._current
        if current is None or current.frame is not frame or current.full_frame is None:
            return None
        if self._current_full is None:
            self._current_full = current.full_frame()
        return self._current_full

    def _prepare(self) -> None:
        self.guard.attempt(lambda: self.directory.mkdir(parents=True, exist_ok=True), self.directory)
        self._apply_retention()

    def _apply_retention(self) -> None:
        """Delete the snapshots past `keep_days` or over `max_bytes`, and the temporary files that a write
        cut off left behind."""
        now = self._clock()
        try:
            deleted = prune_files(self.files(), now=now, keep_days=self.keep_days, max_bytes=self.max_bytes)
            delete_cut_off_writes(self.directory, "*.jpg", now=now, what="snapshots")
        except OSError as exc:
            log.warning("snapshots: retention failed in %s: %s", self.directory, exc)
            return
        if deleted:
            log.info(
                "snapshots: deleted %d old file(s) (retention %.1f days, %.0f MB)",
                len(deleted),
                self.keep_days,
                self.max_bytes / 1e6,
            )

    def _retention_due(self) -> None:
        """Queue retention once an hour: "deleted after keep_days" must hold when no violation comes."""
        now = self._clock()
        if now >= self._next_retention:
            self._next_retention = now + RETENTION_EVERY_S
            self._worker.submit(self._apply_retention)

    def _forget_old_tracks(self, index: int) -> None:
        for track_id in [t for t, seen in self._last_seen.items() if index - seen > FORGET_AFTER_FRAMES]:
            self._last_seen.pop(track_id, None)
            self._tracks.pop(track_id, None)
