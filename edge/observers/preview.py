"""The live view: the latest analysed frame with boxes, labels and scores drawn, as JPEG for MJPEG.

Nothing here may slow the alarm. `on_frame` only stores a reference to the latest result. Drawing and
JPEG encoding happen on a thread that exists only while at least one viewer is connected, at most
`max_fps` times a second, always from the newest result (older ones are never queued). With no viewer the
preview costs one attribute store per frame.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np

from edge.results import AlarmEvent, FrameResult

log = logging.getLogger(__name__)

# BGR colours per decision
COLOURS = {
    "violation": (40, 40, 230),
    "ok": (60, 190, 60),
    "pending": (0, 200, 230),
    "ignored": (150, 150, 150),
}


def draw_overlay(result: FrameResult, camera_connected: bool = True) -> np.ndarray:
    """A copy of the frame with each face's box, label, score and track id, and the fps in a corner."""
    image = result.frame.copy()
    h = image.shape[0]
    scale = max(0.4, h / 960)
    for face in result.faces:
        colour = COLOURS.get(face.decision, COLOURS["pending"])
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        text = f"{face.label} {face.score:.2f}"
        if face.track_id is not None:
            text = f"#{face.track_id} {text}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 4 if y1 - th - base - 4 > 0 else y2 + th + 4
        cv2.rectangle(image, (x1, ty - th - 3), (x1 + tw + 4, ty + base - 1), colour, -1)
        cv2.putText(image, text, (x1 + 2, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    status = f"{result.fps:.1f} fps" + (" (still scene)" if result.detection_skipped else "")
    cv2.putText(
        image,
        status,
        (8, int(20 * scale / 0.5)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        2,
        cv2.LINE_AA,
    )
    if not camera_connected:
        cv2.rectangle(image, (0, 0), (image.shape[1] - 1, h - 1), (0, 0, 255), 8)
        cv2.putText(
            image,
            "CAMERA LOST",
            (16, h // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            2 * scale,
            (0, 0, 255),
            2,
            cv2.LINE_AA,
        )
    return image


class PreviewStream:
    """Observer and JPEG source for the MJPEG endpoint; encodes only while someone watches."""

    def __init__(self, max_fps: float = 5.0, jpeg_quality: int = 70):
        self.max_fps = max_fps
        self.jpeg_quality = jpeg_quality
        self.frames_encoded = 0
        self._latest: FrameResult | None = None
        self._camera_connected = True
        self._cond = threading.Condition()
        self._viewers = 0
        self._jpeg: bytes | None = None
        self._seq = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- Observer: O(1), no copies ------------------------------------------------------------------------

    def on_frame(self, result: FrameResult) -> None:
        self._latest = result

    def on_event(self, event: AlarmEvent) -> None:
        pass

    def on_camera(self, connected: bool) -> None:
        self._camera_connected = connected

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- viewers ------------------------------------------------------------------------------------------

    @property
    def viewers(self) -> int:
        return self._viewers

    @contextlib.contextmanager
    def watch(self) -> Iterator[PreviewStream]:
        """Count a viewer in for the `with` block; the encoder thread runs while any is counted."""
        with self._cond:
            self._viewers += 1
            if self._thread is None:
                self._jpeg = None  # never show a picture left over from an earlier viewer
                self._thread = threading.Thread(
                    target=self._encode_loop, name="maskwatch-preview", daemon=True
                )
                self._thread.start()
        try:
            yield self
        finally:
            with self._cond:
                self._viewers -= 1
                self._cond.notify_all()

    def next_jpeg(self, after_seq: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        """Wait for a JPEG newer than `after_seq`; (seq, None) on timeout or close. Call inside `watch()`."""
        with self._cond:
            fresh = lambda: self._seq > after_seq and self._jpeg is not None  # noqa: E731
            self._cond.wait_for(lambda: fresh() or self._closed, timeout)
            if fresh() and not self._closed:
                return self._seq, self._jpeg
            return after_seq, None

    def encode_latest(self) -> bytes | None:
        """One JPEG of the newest result, for /snapshot.jpg; None before the first frame."""
        result = self._latest
        return None if result is None else self._encode(result)

    # -- the encoder thread ---------------------------------------------------------------------------------

    def _encode(self, result: FrameResult) -> bytes | None:
        image = draw_overlay(result, self._camera_connected)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return jpeg.tobytes() if ok else None

    def _encode_loop(self) -> None:
        interval = 1.0 / self.max_fps
        last_key = None
        while True:
            with self._cond:
                if self._viewers == 0 or self._closed:
                    self._thread = None
                    return
            started = time.monotonic()
            result, connected = self._latest, self._camera_connected
            key = None if result is None else (result.index, id(result), connected)
            if key is not None and key != last_key:
                try:
                    jpeg = self._encode(result)
                except Exception:
                    log.exception("preview: drawing or encoding failed")
                    jpeg = None
                if jpeg is not None:
                    last_key = key
                    with self._cond:
                        self._jpeg = jpeg
                        self._seq += 1
                        self.frames_encoded += 1
                        self._cond.notify_all()
            wait = interval - (time.monotonic() - started)
            with self._cond:
                self._cond.wait_for(lambda: self._viewers == 0 or self._closed, max(wait, 0.005))
