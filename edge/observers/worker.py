"""A bounded job queue drained by one daemon thread, so slow I/O never runs on the frame loop's thread.

Disk writes on an SD card, JPEG encoding and a broker that is down can each take seconds; the alarm path
must not wait for them. `submit` never blocks: when the queue is full the oldest job is dropped (its
effect is stale by then) and counted, so a stuck consumer costs memory bounded by `max_jobs`.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class BackgroundWorker:
    """Runs submitted callables in order on one thread; drops the oldest when more than `max_jobs` wait."""

    def __init__(self, name: str, max_jobs: int = 256):
        self.name = name
        self.dropped = 0
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._max_jobs = max_jobs
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=f"maskwatch-{name}", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        """Queue `job`; O(1), never blocks, never raises."""
        with self._cond:
            if self._closed:
                return
            if len(self._jobs) >= self._max_jobs:
                self._jobs.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("%s: queue full, dropped %d old jobs so far", self.name, self.dropped)
            self._jobs.append(job)
            self._cond.notify()

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued job has run (tests and shutdown); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Run what is queued (up to `timeout`), then stop the thread. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._jobs or self._closed)
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._busy = True
            try:
                job()
            except Exception:
                log.exception("%s: background job failed", self.name)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
