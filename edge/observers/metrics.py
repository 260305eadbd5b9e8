"""Loop health and counters: Prometheus text for /metrics, a summary for the page, the verdict for /healthz.

One observer keeps every number the status page shows, so the page, /metrics and /healthz agree. Its
`on_frame` is a few additions under a lock; formatting happens only when someone scrapes.
"""

from __future__ import annotations

import bisect
import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge import __version__
from edge.results import AlarmEvent, FaceResult, FrameResult

STAGE_BUCKETS_S = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.008, 0.013, 0.02, 0.035, 0.05, 0.1, 0.2, 0.5, 1.0)
EMA_ALPHA = 0.1  # the page's latency figures average roughly the last ten frames
THERMAL_DIR = Path("/sys/class/thermal")


class Histogram:
    """A Prometheus histogram: cumulative counts per upper bound, plus sum and count."""

    def __init__(self, bounds: tuple[float, ...] = STAGE_BUCKETS_S):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip((*map(_fmt, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


@dataclass(frozen=True)
class Health:
    ok: bool
    reason: str  # "frames flowing", "camera lost", "no frame for 7.2 s", "no frames yet"


def _fmt(value: float) -> str:
    return repr(float(value)) if value != int(value) else f"{value:.1f}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def read_cpu_temperature(thermal_dir: Path = THERMAL_DIR) -> float | None:
    """Degrees Celsius from the CPU's thermal zone ("cpu-thermal" on a Pi); None where there is none."""
    try:
        zones = sorted(thermal_dir.glob("thermal_zone*"))
    except OSError:
        return None
    preferred = []
    for zone in zones:
        try:
            kind = (zone / "type").read_text().strip().lower()
        except OSError:
            kind = ""
        preferred.append((0 if "cpu" in kind or "x86_pkg" in kind or "soc" in kind else 1, zone))
    for _, zone in sorted(preferred, key=lambda p: p[0]):
        try:
            return int((zone / "temp").read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
    return None


class LoopMetrics:
    """Observer: counters, stage latency histograms, fps, the latest faces, and whether frames flow."""

    def __init__(
        self,
        *,
        stale_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        thermal_dir: Path = THERMAL_DIR,
    ):
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._thermal_dir = thermal_dir
        self._lock = threading.Lock()
        self._started = clock()
        self.frames_total = 0
        self.frames_skipped = 0
        self.faces_total: collections.Counter[str] = collections.Counter()
        self.alarms_total: collections.Counter[str] = collections.Counter()
        self.stage_hist: dict[str, Histogram] = {}
        self.stage_ema_ms: dict[str, float] = {}
        self.fps = 0.0
        self.camera_connected: bool | None = None  # None until the loop says
        self.camera_reconnects = 0
        self.latest_faces: tuple[FaceResult, ...] = ()
        self.frame_size: tuple[int, int] = (0, 0)
        self._last_frame_at: float | None = None
        self._ever_connected = False

    # -- Observer -----------------------------------------------------------------------------------------

    def on_frame(self, result: FrameResult) -> None:
        now = self._clock()
        with self._lock:
            if self._last_frame_at is not None and not result.fps:
                dt = now - self._last_frame_at
                if dt > 0:
                    self.fps = (1 - EMA_ALPHA) * self.fps + EMA_ALPHA / dt if self.fps else 1.0 / dt
            elif result.fps:
                self.fps = result.fps
            self._last_frame_at = now
            self.frames_total += 1
            self.frames_skipped += result.detection_skipped
            for face in result.faces:
                self.faces_total[face.label] += 1
            for stage, ms in result.stage_ms.items():
                hist = self.stage_hist.get(stage)
                if hist is None:
                    hist = self.stage_hist[stage] = Histogram()
                hist.observe(ms / 1000.0)
                old = self.stage_ema_ms.get(stage)
                self.stage_ema_ms[stage] = ms if old is None else (1 - EMA_ALPHA) * old + EMA_ALPHA * ms
            self.latest_faces = result.faces
            self.frame_size = (int(result.frame.shape[1]), int(result.frame.shape[0]))

    def on_event(self, event: AlarmEvent) -> None:
        with self._lock:
            self.alarms_total[event.label] += 1

    def on_camera(self, connected: bool) -> None:
        with self._lock:
            if connected and self._ever_connected and self.camera_connected is False:
                self.camera_reconnects += 1
            self._ever_connected |= connected
            self.camera_connected = connected

    def close(self) -> None:
        pass

    # -- readers --------------------------------------------------------------------------------------------

    def health(self) -> Health:
        with self._lock:
            if self.camera_connected is False:
                return Health(False, "camera lost")
            if self._last_frame_at is None:
                return Health(False, "no frames yet")
            age = self._clock() - self._last_frame_at
        if age > self.stale_after_s:
            return Health(False, f"no frame for {age:.1f} s")
        return Health(True, "frames flowing")

    def last_frame_age(self) -> float | None:
        with self._lock:
            return None if self._last_frame_at is None else self._clock() - self._last_frame_at

    def summary(self) -> dict:
        """What the status page shows about the loop, as plain JSON-able values."""
        health = self.health()
        with self._lock:
            return {
                "fps": round(self.fps, 2),
                "stage_ms": {k: round(v, 2) for k, v in self.stage_ema_ms.items()},
                "frames": self.frames_total,
                "frames_skipped": self.frames_skipped,
                "frame_size": list(self.frame_size),
                "camera_connected": self.camera_connected,
                "camera_reconnects": self.camera_reconnects,
                "healthy": health.ok,
                "health": health.reason,
                "uptime_s": round(self._clock() - self._started, 1),
                "tracks": [
                    {
                        "track_id": f.track_id,
                        "label": f.label,
                        "score": round(f.score, 3),
                        "decision": f.decision,
                        "face_px": round(f.box[3] - f.box[1]),
                    }
                    for f in self.latest_faces
                ],
            }

    def render_prometheus(self) -> str:
        """The text exposition format, version 0.0.4."""
        lines: list[str] = []

        def metric(name: str, kind: str, doc: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {doc}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{labels} {_num(value)}")

        temperature = read_cpu_temperature(self._thermal_dir)
        age = self.last_frame_age()
        with self._lock:
            metric(
                "maskwatch_info",
                "gauge",
                "Build information.",
                [(f'{{version="{_escape(__version__)}"}}', 1)],
            )
            metric(
                "maskwatch_frames_total",
                "counter",
                "Frames processed by the loop.",
                [("", self.frames_total)],
            )
            metric(
                "maskwatch_frames_skipped_total",
                "counter",
                "Frames whose detection the motion gate skipped.",
                [("", self.frames_skipped)],
            )
            metric(
                "maskwatch_faces_total",
                "counter",
                "Faces classified, by the classifier's top label.",
                [(f'{{label="{_escape(k)}"}}', v) for k, v in sorted(self.faces_total.items())],
            )
            metric(
                "maskwatch_alarms_total",
                "counter",
                "Alarms raised, by class.",
                [(f'{{label="{_escape(k)}"}}', v) for k, v in sorted(self.alarms_total.items())],
            )
            lines.append("# HELP maskwatch_stage_latency_seconds Time per frame spent in each loop stage.")
            lines.append("# TYPE maskwatch_stage_latency_seconds histogram")
            for stage, hist in sorted(self.stage_hist.items()):
                st = _escape(stage)
                for bound, n in hist.cumulative():
                    lines.append(f'maskwatch_stage_latency_seconds_bucket{{stage="{st}",le="{bound}"}} {n}')
                lines.append(f'maskwatch_stage_latency_seconds_sum{{stage="{st}"}} {_num(hist.sum)}')
                lines.append(f'maskwatch_stage_latency_seconds_count{{stage="{st}"}} {hist.count}')
            metric("maskwatch_fps", "gauge", "Frames per second of the alarm path.", [("", self.fps)])
            metric(
                "maskwatch_camera_connected",
                "gauge",
                "1 while the camera delivers frames.",
                [("", 1 if self.camera_connected is not False else 0)],
            )
            metric(
                "maskwatch_camera_reconnects_total",
                "counter",
                "Times the camera came back after a loss.",
                [("", self.camera_reconnects)],
            )
        if age is not None:
            metric("maskwatch_last_frame_age_seconds", "gauge", "Seconds since the last frame.", [("", age)])
        if temperature is not None:
            metric("maskwatch_cpu_temperature_celsius", "gauge", "CPU temperature.", [("", temperature)])
        return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"
