"""Everything that watches the loop, built from config in one place: app.py makes one call.

None of the pipeline stages (camera -> faces -> classifier -> decision -> alarm) imports this package:
loop.py hands every observer its FrameResults and AlarmEvents, and that is all. What is here (issue 5):
- events.py the alarm log and daily counts, snapshots.py violation snapshots, crops.py face crops for
  retraining; all three write through storage.py, on a worker.py thread.
- metrics.py, preview.py, status_server.py and page.html: the status page, /metrics and /healthz.
- mqtt.py: Home Assistant over MQTT.

Order matters only for readers: the events log comes first so that, when later observers look at the
counts, the alarm of this very frame is already in them. Each observer is wrapped so that a bug in one
costs a log line, never the alarm path.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from edge.config import Config
from edge.observers.crops import CropCollector
from edge.observers.events import EventLog
from edge.observers.metrics import LoopMetrics
from edge.observers.snapshots import SnapshotSaver
from edge.results import AlarmEvent, FrameResult, Observer

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = "/var/lib/maskwatch"


def state_dir_for(config: Config) -> Path:
    """events.state_dir, else $MASKWATCH_STATE_DIR, else /var/lib/maskwatch (systemd's StateDirectory)."""
    return Path(config.events.state_dir or os.environ.get("MASKWATCH_STATE_DIR") or DEFAULT_STATE_DIR)


class Guarded:
    """Wraps an observer so that its exceptions are logged (at most once a minute) and swallowed."""

    def __init__(self, inner: Observer, clock=time.monotonic):
        self.inner = inner
        self.errors = 0
        self._clock = clock
        self._last_logged = float("-inf")

    def _call(self, name: str, *args) -> None:
        try:
            getattr(self.inner, name)(*args)
        except Exception:
            self.errors += 1
            if self._clock() - self._last_logged > 60.0:
                self._last_logged = self._clock()
                log.exception(
                    "%s.%s failed (%d errors so far); the loop goes on",
                    type(self.inner).__name__,
                    name,
                    self.errors,
                )

    def on_frame(self, result: FrameResult) -> None:
        self._call("on_frame", result)

    def on_event(self, event: AlarmEvent) -> None:
        self._call("on_event", event)

    def on_camera(self, connected: bool) -> None:
        self._call("on_camera", connected)

    def close(self) -> None:
        self._call("close")

    def __repr__(self) -> str:
        return f"Guarded({self.inner!r})"


def build_observers(config: Config, state_dir: Path | str | None = None) -> list[Observer]:
    """The observers `config` asks for. Raises StatusServerError or MqttUnavailable with
    the fix in the message when the status page or MQTT cannot start; nothing is left running then."""
    state_dir = Path(state_dir) if state_dir else state_dir_for(config)
    ev = config.events
    built: list[Observer] = []
    try:
        snapshots = None
        if ev.snapshots:
            snapshots = SnapshotSaver(
                state_dir / "snapshots",
                keep_days=ev.snapshot_keep_days,
                max_bytes=ev.snapshot_max_mb * 1e6,
                blur_others=ev.blur_other_faces,
            )
        events = EventLog(
            state_dir, max_bytes=int(ev.log_max_mb * 1e6), keep=ev.log_keep, snapshots=snapshots
        )
        built.append(events)
        if snapshots is not None:
            built.append(snapshots)
        if ev.capture_crops:
            built.append(CropCollector(state_dir / "crops", ev.capture_crops))
        if config.status.port:
            built.extend(_status_page(config, events, snapshots))
        if config.mqtt.host:
            built.append(_mqtt(config, events))
    except BaseException:
        for observer in reversed(built):
            observer.close()
        raise
    return [Guarded(o) for o in built]


def _status_page(config: Config, events: EventLog, snapshots: SnapshotSaver | None) -> list[Observer]:
    from edge.observers.preview import PreviewStream
    from edge.observers.status_server import StatusServer

    st = config.status
    # Never call a slow frame rate a stalled camera: allow three frame intervals at least.
    stale_s = max(st.stale_s, 3.0 / config.camera.fps_limit) if config.camera.fps_limit else st.stale_s
    metrics = LoopMetrics(stale_after_s=stale_s)
    preview = PreviewStream(max_fps=st.preview_fps, jpeg_quality=st.preview_quality)

    def extra_status() -> dict:
        storage = {"events log": events.guard.error}
        if snapshots is not None:
            storage["snapshots"] = snapshots.guard.error
        return {
            "counts": {"today": events.today(), "week": events.this_week()},
            "events": events.recent(20),
            "storage": storage,
        }

    server = StatusServer(
        host=st.host,
        port=st.port,
        token=st.token,
        metrics=metrics,
        preview=preview,
        extra_status=extra_status,
        config=config,
        snapshot_dir=snapshots.directory if snapshots is not None else None,
    )
    return [metrics, preview, server]


def _mqtt(config: Config, events: EventLog) -> Observer:
    from edge.observers.mqtt import MqttPublisher

    m = config.mqtt
    return MqttPublisher(
        host=m.host,
        port=m.port,
        username=m.username,
        password=m.password,
        topic_prefix=m.topic_prefix,
        discovery_prefix=m.discovery_prefix,
        node_id=m.node_id,
        violation_hold_s=m.violation_hold_s,
        counts=lambda: {"today": events.today(), "week": events.this_week()},
    )
