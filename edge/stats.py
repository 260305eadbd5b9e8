"""How the loop is doing, in numbers: a frame rate meter and a stats line in the log every minute.

journald keeps the log, so one line a minute (fps, per-stage latency, faces, alarms, camera state) is
enough to see a slow Pi, a dark scene or a dead camera after the fact, at no cost per frame beyond a
few additions.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable

from edge.results import AlarmEvent, FrameResult

log = logging.getLogger(__name__)

STAGES = ("capture", "detect", "classify", "decide", "total")


class FpsMeter:
    """Frames per second from frame timestamps, smoothed over about `window` frames."""

    def __init__(self, window: int = 15):
        self.alpha = 2.0 / (window + 1)
        self._last: float | None = None
        self._interval: float | None = None

    def tick(self, timestamp: float) -> float:
        if self._last is not None:
            dt = max(timestamp - self._last, 1e-6)
            self._interval = (
                dt if self._interval is None else self._interval + self.alpha * (dt - self._interval)
            )
        self._last = timestamp
        return 1.0 / self._interval if self._interval else 0.0


class StatsReporter:
    """An Observer that logs one stats line every `interval_s` seconds of its clock."""

    def __init__(self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self._clock = clock
        self._camera = "ok"
        self._reset(clock())

    def _reset(self, now: float) -> None:
        self._started = now
        self._frames = 0
        self._skipped = 0
        self._faces = 0
        self._alarms: dict[str, int] = defaultdict(int)
        self._stage_sum: dict[str, float] = defaultdict(float)
        self._worst_total = 0.0

    def on_frame(self, result: FrameResult) -> None:
        self._frames += 1
        self._skipped += result.detection_skipped
        self._faces += len(result.faces)
        for stage, ms in result.stage_ms.items():
            self._stage_sum[stage] += ms
        self._worst_total = max(self._worst_total, result.stage_ms.get("total", 0.0))
        self._maybe_report()

    def on_event(self, event: AlarmEvent) -> None:
        self._alarms[event.label] += 1

    def on_camera(self, connected: bool) -> None:
        self._camera = "ok" if connected else "lost"
        self._maybe_report()

    def close(self) -> None:
        if self._frames:
            self.report()

    def _maybe_report(self) -> None:
        if self._clock() - self._started >= self.interval_s:
            self.report()

    def line(self) -> str:
        now = self._clock()
        elapsed = max(now - self._started, 1e-9)
        n = max(self._frames, 1)
        stages = " ".join(f"{s} {self._stage_sum[s] / n:.2f}" for s in STAGES if s in self._stage_sum)
        alarms = sum(self._alarms.values())
        by_label = ", ".join(f"{k} {v}" for k, v in sorted(self._alarms.items()))
        return (
            f"stats: {self._frames / elapsed:.1f} fps over {elapsed:.0f} s | ms/frame {stages or '-'}"
            f" (worst {self._worst_total:.1f}) | {self._faces / n:.2f} faces/frame"
            f", detection skipped {self._skipped} | alarms {alarms}{f' ({by_label})' if by_label else ''}"
            f" | camera {self._camera}"
        )

    def report(self) -> None:
        log.info("%s", self.line())
        self._reset(self._clock())
