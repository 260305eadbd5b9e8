"""Writing to the SD card without ever taking the daemon down.

A full or read-only card must cost the installer their snapshots or log lines, never the alarm. Every
writer (events log, snapshots, face crops) goes through a `DiskGuard`: the first OSError stops that writer
with one log line that names the path and the reason, and it tries again after `retry_s`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from edge.atomic_files import TMP_SUFFIX

log = logging.getLogger(__name__)

# A temporary file older than this was cut off by a crash or a power cut, and nothing else would ever
# delete it. Writing a snapshot or a crop takes milliseconds, so this never removes a write in progress.
STALE_TMP_S = 60.0


class DiskGuard:
    """Runs writes for one writer; after an OSError it skips them for `retry_s` and says so once."""

    def __init__(self, what: str, retry_s: float = 600.0, clock: Callable[[], float] = time.monotonic):
        self.what = what
        self.retry_s = retry_s
        self.error: str | None = None  # why saving stopped; None while it works
        self.skipped = 0
        self._clock = clock
        self._resume_at = 0.0

    @property
    def is_stopped(self) -> bool:
        """True while writes are being skipped (after a failure, until the retry time)."""
        return self.error is not None and self._clock() < self._resume_at

    def attempt(self, write: Callable[[], object], path: os.PathLike | str = "") -> bool:
        """Run `write()`; False if it failed now or saving is stopped. Never raises OSError."""
        if self.is_stopped:
            self.skipped += 1
            return False
        try:
            write()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if self.error is None:
                log.error(
                    "%s: cannot write %s (%s); stopped saving, the daemon keeps running; retrying in %.0f s",
                    self.what,
                    path or exc.filename or "?",
                    reason,
                    self.retry_s,
                )
            self.error = reason
            self._resume_at = self._clock() + self.retry_s
            self.skipped += 1
            return False
        if self.error is not None:
            log.info("%s: writing again after: %s", self.what, self.error)
            self.error = None
        return True


def prune_files(paths: list[Path], *, now: float, keep_days: float, max_bytes: float) -> list[Path]:
    """Delete files older than `keep_days` (0 = no age limit), then the oldest until the rest fit in
    `max_bytes`, but never the newest file for size (the snapshot just taken is worth keeping even when
    it alone is over budget). Returns the deleted paths; a file that vanished meanwhile is skipped."""
    entries = []
    for p in paths:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    entries.sort()
    deleted = []
    total = sum(size for _, size, _ in entries)
    cutoff = now - keep_days * 86400.0 if keep_days > 0 else float("-inf")
    for i, (mtime, size, p) in enumerate(entries):
        too_old = mtime < cutoff
        over_budget = total > max_bytes and i < len(entries) - 1
        if not (too_old or over_budget):
            break
        p.unlink(missing_ok=True)
        total -= size
        deleted.append(p)
    return deleted


def delete_cut_off_writes(folder: Path, pattern: str, *, now: float, what: str) -> list[Path]:
    """Delete write_atomic's temporary files of the files `folder.glob(pattern)` finds that were last
    written more than STALE_TMP_S before `now`, and say so in the log as `what`. Returns the deleted ones."""
    temporaries = sorted(Path(folder).glob(pattern + TMP_SUFFIX))
    deleted = prune_files(temporaries, now=now, keep_days=STALE_TMP_S / 86400.0, max_bytes=float("inf"))
    if deleted:
        log.info("%s: deleted %d half-written file(s) left by a crash or power cut", what, len(deleted))
    return deleted
