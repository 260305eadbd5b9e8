"""Face crops for retraining: one crop per decided person, the predicted label in the file name.

The faces a camera really sees at an entrance (angle, light, distance) are the best training data the
classifier can get. Off by default; `events.capture_crops: N` keeps at most N crops in total (counted on
disk, so the cap holds across restarts). Files go to `<state_dir>/crops/<label>/`, named
`<time>_t<track>_<label>_<score>.jpg` so a person can sort out the mistakes by moving files between the
class folders, which is the layout the training issue reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.atomic_files import write_atomic
from edge.observers.storage import DiskGuard, delete_cut_off_writes
from edge.observers.worker import BackgroundWorker
from edge.results import FrameResult

log = logging.getLogger(__name__)

MARGIN = 0.2  # context kept around the detector's box, as a fraction of its size


def crop_with_margin(frame: np.ndarray, box, margin: float = MARGIN) -> np.ndarray:
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    x1, y1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
    x2, y2 = min(w, int(round(x2 + mx))), min(h, int(round(y2 + my)))
    return frame[y1:y2, x1:x2]


class CropCollector:
    """Observer: saves the crop of each tracked face the first time it is decided, up to `limit` in total."""

    def __init__(
        self,
        directory: Path,
        limit: int,
        *,
        clock: Callable[[], float] = time.time,
        guard: DiskGuard | None = None,
    ):
        self.directory = Path(directory)
        self.limit = limit
        self.guard = guard or DiskGuard("face crops")
        self._clock = clock
        self._done_tracks: set[int] = set()
        self._lock = threading.Lock()  # `count` is raised on the loop thread, lowered by the writer
        try:
            self.count = sum(1 for _ in self.directory.glob("*/*.jpg"))
            delete_cut_off_writes(self.directory, "*/*.jpg", now=clock(), what="face crops")
        except OSError:
            self.count = 0
        if self.count >= limit:
            log.info(
                "face crops: %d already in %s, the cap of %d is reached", self.count, self.directory, limit
            )
        self._worker = BackgroundWorker("crops", max_jobs=32)

    def on_frame(self, result: FrameResult) -> None:
        if self.count >= self.limit:
            return
        for face in result.faces:
            if face.decision not in ("ok", "violation") or face.track_id is None:
                continue
            if face.track_id in self._done_tracks:
                continue
            self._done_tracks.add(face.track_id)
            crop = crop_with_margin(result.frame, face.box).copy()  # small; the frame may be reused
            if crop.size == 0:
                continue
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._clock()))
            path = self.directory / face.label / f"{stamp}_t{face.track_id}_{face.label}_{face.score:.2f}.jpg"
            with self._lock:
                self.count += 1
            self._worker.submit(lambda c=crop, p=path: self._write(c, p))
            if self.count >= self.limit:
                log.info("face crops: cap of %d reached, no more crops are saved", self.limit)
                return

    def on_event(self, event) -> None:
        pass

    def on_camera(self, connected: bool) -> None:
        pass

    def close(self) -> None:
        self._worker.close()

    def flush(self, timeout: float = 5.0) -> bool:
        return self._worker.drain(timeout)

    def _write(self, crop: np.ndarray, path: Path) -> None:
        ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            return

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, jpeg.tobytes())

        if not self.guard.attempt(write, path):
            with self._lock:
                self.count -= 1  # not saved: it does not count against the cap
