"""The events log: every alarm as one JSON line under the state directory, and per-day counts by class.

This is what answers "how many people came in without a mask this week?". The log is append-only JSON
Lines with size-based rotation (`events.jsonl`, `events.jsonl.1`, ...); counts live in `counts.json`,
written atomically, so they survive a restart or a power cut. People decided "ok" are counted as
`with_mask` (once per tracked person) so the counts show the share of violators, not only their number.

Observer calls only update memory and queue the writes; the disk is touched on a background thread.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from edge.atomic_files import fsync_folder, write_atomic
from edge.observers.storage import DiskGuard
from edge.observers.worker import BackgroundWorker
from edge.results import AlarmEvent, FrameResult

log = logging.getLogger(__name__)

LOG_NAME = "events.jsonl"
COUNTS_NAME = "counts.json"
COUNTS_KEEP_DAYS = 400
RECENT_KEEP = 50
OK_LABEL = "with_mask"


class SnapshotTaker(Protocol):
    def save(self, event: AlarmEvent, event_id: str) -> str | None: ...


def event_id(event: AlarmEvent, when: float) -> str:
    """A name unique per alarm and readable in a file listing: `20240501-081502-t17`."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}-t{event.track_id}"


class DailyCounts:
    """Counts by local date and class; thread-safe; `to_json`/`from_json` for counts.json."""

    def __init__(self, days: dict[str, dict[str, int]] | None = None):
        self._days: dict[str, dict[str, int]] = days or {}
        self._lock = threading.Lock()

    def add(self, day: dt.date, label: str, n: int = 1) -> None:
        with self._lock:
            per_class = self._days.setdefault(day.isoformat(), {})
            per_class[label] = per_class.get(label, 0) + n

    def on_day(self, day: dt.date) -> dict[str, int]:
        with self._lock:
            return dict(self._days.get(day.isoformat(), {}))

    def between(self, first: dt.date, last: dt.date) -> dict[str, int]:
        """Sum over `first`..`last` inclusive."""
        total: dict[str, int] = {}
        with self._lock:
            for key, per_class in self._days.items():
                if first.isoformat() <= key <= last.isoformat():
                    for label, n in per_class.items():
                        total[label] = total.get(label, 0) + n
        return total

    def week_of(self, day: dt.date) -> dict[str, int]:
        """Monday of `day`'s ISO week up to `day`."""
        return self.between(day - dt.timedelta(days=day.weekday()), day)

    def to_json(self, today: dt.date) -> str:
        oldest = (today - dt.timedelta(days=COUNTS_KEEP_DAYS)).isoformat()
        with self._lock:
            self._days = {k: v for k, v in self._days.items() if k >= oldest}
            return json.dumps({"version": 1, "days": self._days}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DailyCounts:
        data = json.loads(text)
        days = data["days"]
        if not isinstance(days, dict):
            raise ValueError("'days' is not a mapping")
        return cls({str(k): {str(lbl): int(n) for lbl, n in v.items()} for k, v in days.items()})


class EventLog:
    """Observer: appends alarms to the JSONL log, keeps daily counts and the last events in memory."""

    def __init__(
        self,
        state_dir: Path,
        *,
        max_bytes: int = 10 * 1024 * 1024,
        keep: int = 5,
        snapshots: SnapshotTaker | None = None,
        clock: Callable[[], float] = time.time,
        guard: DiskGuard | None = None,
    ):
        self.state_dir = Path(state_dir)
        self.log_path = self.state_dir / LOG_NAME
        self.counts_path = self.state_dir / COUNTS_NAME
        self.max_bytes = max_bytes
        self.keep = keep
        self.guard = guard or DiskGuard("events log")
        self._snapshots = snapshots
        self._clock = clock
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_KEEP)
        self._counted_tracks: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._counts_dirty = threading.Event()
        self._tail_checked = False  # whether the log's last line was checked for a torn end
        self._worker = BackgroundWorker("events")
        self.guard.attempt(lambda: self.state_dir.mkdir(parents=True, exist_ok=True), self.state_dir)
        self.counts = self._load_counts()
        self._load_recent()

    # -- Observer -----------------------------------------------------------------------------------------

    def on_frame(self, result: FrameResult) -> None:
        """Count each tracked person decided "ok" once, as with_mask."""
        for face in result.faces:
            if (
                face.decision == "ok"
                and face.track_id is not None
                and face.track_id not in self._counted_tracks
            ):
                self._counted_tracks[face.track_id] = None
                if len(self._counted_tracks) > 4096:
                    self._counted_tracks.popitem(last=False)
                self.counts.add(self._today(), OK_LABEL)
                self._save_counts_soon()

    def on_event(self, event: AlarmEvent) -> None:
        now = self._clock()
        record: dict[str, Any] = {
            "id": event_id(event, now),
            "time": dt.datetime.fromtimestamp(now).astimezone().isoformat(timespec="seconds"),
            "ts": round(now, 3),
            "class": event.label,
            "score": round(float(event.score), 4),
            "track_id": event.track_id,
            "track_length": event.track_length,
            "face_px": event.face_px,
            "box": [round(float(v), 1) for v in event.box],
        }
        if self._snapshots is not None:
            snapshot = self._snapshots.save(event, record["id"])
            if snapshot:
                record["snapshot"] = snapshot
        self._counted_tracks[event.track_id] = None  # a violator is not also counted as with_mask
        self.counts.add(self._today(now), event.label)
        self._recent.append(record)
        line = json.dumps(record, sort_keys=True) + "\n"
        self._worker.submit(lambda: self.guard.attempt(lambda: self._append(line), self.log_path))
        self._save_counts_soon()

    def on_camera(self, connected: bool) -> None:
        pass

    def close(self) -> None:
        self._worker.close()

    # -- what the status page and MQTT read --------------------------------------------------------------

    def recent(self, n: int = 20) -> list[dict[str, Any]]:
        """The last `n` events, newest first."""
        return list(self._recent)[-n:][::-1]

    def today(self) -> dict[str, int]:
        return self.counts.on_day(self._today())

    def this_week(self) -> dict[str, int]:
        return self.counts.week_of(self._today())

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait for queued writes (tests, shutdown)."""
        return self._worker.drain(timeout)

    # -- disk -----------------------------------------------------------------------------------------------

    def _today(self, now: float | None = None) -> dt.date:
        return dt.date.fromtimestamp(self._clock() if now is None else now)

    def _append(self, line: str) -> None:
        data = line.encode()
        try:
            size = self.log_path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > self.max_bytes:
            self._rotate()
            size = 0
        if size and not self._tail_checked and not self._ends_with_newline():
            data = b"\n" + data  # a power cut tore the last line: keep ours whole
        self._tail_checked = True
        with open(self.log_path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # an alarm is rare and its record is what a power cut must not take

    def _ends_with_newline(self) -> bool:
        with open(self.log_path, "rb") as f:
            f.seek(-1, 2)
            return f.read(1) == b"\n"

    def _rotate(self) -> None:
        """events.jsonl -> .1 -> .2 ... ; the one past `keep` is deleted."""
        self.log_path.with_name(f"{LOG_NAME}.{self.keep}").unlink(missing_ok=True)
        for i in range(self.keep - 1, 0, -1):
            older = self.log_path.with_name(f"{LOG_NAME}.{i}")
            if older.exists():
                older.replace(self.log_path.with_name(f"{LOG_NAME}.{i + 1}"))
        self.log_path.replace(self.log_path.with_name(f"{LOG_NAME}.1"))
        fsync_folder(self.log_path.parent)
        log.info("events log rotated at %d bytes", self.max_bytes)

    def _save_counts_soon(self) -> None:
        """Coalesce: one queued save writes whatever the counts are when it runs."""
        if not self._counts_dirty.is_set():
            self._counts_dirty.set()
            self._worker.submit(self._save_counts)

    def _save_counts(self) -> None:
        self._counts_dirty.clear()
        text = self.counts.to_json(self._today())
        self.guard.attempt(lambda: write_atomic(self.counts_path, text.encode()), self.counts_path)

    def _load_counts(self) -> DailyCounts:
        try:
            return DailyCounts.from_json(self.counts_path.read_text())
        except FileNotFoundError:
            return DailyCounts()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s is unreadable (%s); counts start from zero", self.counts_path, exc)
            return DailyCounts()

    def _load_recent(self) -> None:
        """The last events from the current log (and the previous one if it is short), for the status page."""
        lines: list[str] = []
        for path in (self.log_path.with_name(f"{LOG_NAME}.1"), self.log_path):
            try:
                with open(path, "rb") as f:
                    f.seek(max(0, f.seek(0, 2) - 64 * 1024))
                    lines.extend(f.read(64 * 1024).decode(errors="replace").splitlines()[-RECENT_KEEP:])
            except OSError:
                continue
        for line in lines[-RECENT_KEEP:]:
            try:
                self._recent.append(json.loads(line))
            except ValueError:
                continue
