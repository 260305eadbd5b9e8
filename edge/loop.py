"""The per-frame loop: camera -> faces -> classifier -> decision -> alarm, then the observers.

Every collaborator is a parameter (source, detector, classifier, decider, alarm, observers, clock), so
the daemon, the tests and the benchmarks run this same code: production passes the Pi camera and GPIO,
tests pass an image folder and mock pins, the benchmark passes frames in memory. A finite source runs to
its end. Nothing here allocates per frame beyond the detector's and classifier's own work: frames are
passed by reference, interpreters live as long as their stage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from time import perf_counter
from typing import Protocol

import numpy as np

from edge.camera import CameraError, FramePacer, FrameSource, MotionGate
from edge.decision import IGNORED, OK, Decider, Observation
from edge.results import AlarmEvent, FaceResult, FrameResult, Observer
from edge.stats import FpsMeter

log = logging.getLogger(__name__)

SLOW_OBSERVER_MS = 20.0


class Detector(Protocol):
    def detect(self, frame: np.ndarray, frame_order: str = "BGR") -> list: ...


class Classifier(Protocol):
    def classify(self, frame: np.ndarray, boxes: list, frame_order: str = "BGR") -> list: ...


class AlarmOutput(Protocol):
    def alert(self, label: str) -> None: ...

    def fault(self) -> None: ...

    def clear_fault(self) -> None: ...

    def show_ok(self, on: bool) -> None: ...


@dataclass
class LoopSummary:
    frames: int = 0
    faces: int = 0
    events: list[AlarmEvent] = field(default_factory=list)  # without their frames
    camera_losses: int = 0
    first_result_s: float | None = None  # seconds from the loop's start to its first FrameResult
    ended: str = ""  # "source ended" | "stopped" | "max frames"


def process_frame(
    frame: np.ndarray,
    timestamp: float,
    detector: Detector,
    classifier: Classifier,
    decider: Decider,
    *,
    skip_detection: bool = False,
) -> tuple[tuple[FaceResult, ...], list[AlarmEvent], dict[str, float]]:
    """One frame through faces -> classifier -> decision: face results, new alarm events, stage ms.

    The decider says which faces to classify: never those it would ignore (too small, cut by the edge,
    outside the ROI), and a settled person's only on some frames (`decision.reclassify_every`). Those go
    to the classifier in one batch; the others cast no vote on this frame, and a settled person's face
    result shows their latest classification.
    """
    t0 = perf_counter()
    faces = [] if skip_detection else detector.detect(frame, frame_order="BGR")
    t1 = perf_counter()
    height, width = frame.shape[:2]
    wanted = decider.to_classify(timestamp, (width, height), [face.box for face in faces])
    counted = [i for i, want in enumerate(wanted) if want]
    predictions = (
        classifier.classify(frame, [faces[i].box for i in counted], frame_order="BGR") if counted else []
    )
    by_face = dict(zip(counted, predictions, strict=True))
    t2 = perf_counter()
    observations = [_observation(face, by_face.get(i)) for i, face in enumerate(faces)]
    decisions, events = decider.update(timestamp, (width, height), observations)
    t3 = perf_counter()
    latest = {t.track_id: t.latest for t in decider.tracks}
    observations = [
        (latest.get(d.track_id) or obs) if obs.label is None and d.decision != IGNORED else obs
        for obs, d in zip(observations, decisions, strict=True)
    ]
    results = tuple(
        FaceResult(
            box=tuple(float(v) for v in face.box),
            label=obs.label or "",
            score=float(obs.score),
            scores=dict(obs.scores),
            keypoints=tuple(getattr(face, "keypoints", ())),
            track_id=d.track_id,
            decision=d.decision,
        )
        for face, obs, d in zip(faces, observations, decisions, strict=True)
    )
    stage_ms = {"detect": (t1 - t0) * 1e3, "classify": (t2 - t1) * 1e3, "decide": (t3 - t2) * 1e3}
    return results, events, stage_ms


def _observation(face, prediction) -> Observation:
    if prediction is None:
        return Observation(face.box)
    return Observation(face.box, prediction.label, prediction.score, prediction.scores)


def run_loop(
    source: FrameSource,
    detector: Detector,
    classifier: Classifier,
    decider: Decider,
    alarm: AlarmOutput,
    *,
    observers: Sequence[Observer] = (),
    clock: Callable[[], float] = time.monotonic,
    stop: threading.Event | None = None,
    max_frames: int | None = None,
    pacer: FramePacer | None = None,
    motion_gate: MotionGate | None = None,
    on_idle: Callable[[], None] | None = None,
    first_index: int = 0,
) -> LoopSummary:
    """Run frames until the source ends, `stop` is set, or `max_frames` frames were processed.

    The loop only reads: the caller opens and closes the source (RetryingSource and FrameListSource open
    themselves on the first read), so a loop stopped for a config reload can go on where it was.

    `clock` timestamps each frame once (the decider's time: tests pass a clock that steps 1/15 s);
    stage latencies are always measured with the real performance counter. While the camera is lost the
    alarm shows its fault pattern and `on_idle` is called between retries (the systemd watchdog).
    """
    stop = stop or threading.Event()
    fanout = _Fanout(observers)
    fps = FpsMeter()
    summary = LoopSummary()
    camera_ok: bool | None = None
    full_frame = getattr(source, "full_frame", None)  # picamera2's main stream, for snapshots
    started = perf_counter()
    while True:
        if stop.is_set():
            summary.ended = "stopped"
            break
        if max_frames is not None and summary.frames >= max_frames:
            summary.ended = "max frames"
            break
        if pacer is not None:
            pacer.wait()
        t0 = perf_counter()
        try:
            frame = source.read()
        except CameraError:
            if camera_ok is not False:
                camera_ok = False
                summary.camera_losses += 1
                alarm.fault()
                fanout.call("on_camera", False)
            if on_idle is not None:
                on_idle()
            continue
        if frame is None:
            summary.ended = "source ended"
            break
        capture_ms = (perf_counter() - t0) * 1e3
        if camera_ok is not True:
            if camera_ok is False:
                alarm.clear_fault()
            camera_ok = True
            fanout.call("on_camera", True)
        timestamp = clock()
        still = motion_gate is not None and motion_gate.is_still(frame) and not decider.tracks
        faces, events, stage_ms = process_frame(
            frame, timestamp, detector, classifier, decider, skip_detection=still
        )
        for event in events:
            alarm.alert(event.label)
        counted = [f for f in faces if f.decision != IGNORED]
        alarm.show_ok(bool(counted) and all(f.decision == OK for f in counted))
        stage_ms["capture"] = capture_ms
        stage_ms["total"] = (perf_counter() - t0) * 1e3
        result = FrameResult(
            first_index + summary.frames,
            timestamp,
            frame,
            faces,
            stage_ms,
            fps.tick(timestamp),
            still,
            full_frame,
        )
        fanout.call("on_frame", result)
        for event in events:
            fanout.call("on_event", replace(event, frame=frame))
        if summary.first_result_s is None:
            summary.first_result_s = perf_counter() - started
        summary.frames += 1
        summary.faces += len(faces)
        summary.events.extend(events)
    return summary


class _Fanout:
    """Calls every observer, so that a broken or slow one is logged but never stops the loop."""

    def __init__(self, observers: Sequence[Observer]):
        self.observers = list(observers)
        self._reported: set[tuple[int, str]] = set()
        self._slow_in_a_row: dict[int, int] = {}

    def call(self, method: str, arg) -> None:
        for observer in self.observers:
            t0 = perf_counter()
            try:
                getattr(observer, method)(arg)
            except Exception:
                self._report_once(observer, method, "raised", exc_info=True)
                continue
            ms = (perf_counter() - t0) * 1e3
            # One slow call is a busy CPU or a GC pause; three in a row is the observer.
            slow = self._slow_in_a_row[id(observer)] = (
                self._slow_in_a_row.get(id(observer), 0) + 1 if ms > SLOW_OBSERVER_MS else 0
            )
            if slow == 3:
                self._report_once(
                    observer, method, f"took {ms:.0f} ms three times in a row (it runs on the alarm's thread)"
                )

    def _report_once(self, observer, method: str, what: str, exc_info: bool = False) -> None:
        key = (id(observer), f"{method} {what.split()[0]}")
        if key in self._reported:
            return
        self._reported.add(key)
        log.warning(
            "observer %s.%s %s; further reports suppressed",
            type(observer).__name__,
            method,
            what,
            exc_info=exc_info,
        )
