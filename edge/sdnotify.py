"""systemd's notify protocol over a plain unix datagram socket: no dependency, a no-op outside systemd.

Under `Type=notify` systemd waits for READY=1 before it calls the service started, so we send it after
the first frame has gone through the whole pipeline: "started" then means "guarding the door". With
`WatchdogSec=` systemd sets WATCHDOG_USEC and restarts us if pings stop; we ping per processed frame (and
while a lost camera is being retried, which is the loop working, not hanging). STATUS carries the fps so
`systemctl status maskwatch` shows it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

from edge.results import AlarmEvent, FrameResult

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 10.0


class SdNotifier:
    """Talks to systemd if NOTIFY_SOCKET is set. Implements the loop's Observer protocol."""

    def __init__(self, environ: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic):
        env = os.environ if environ is None else environ
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_s = _watchdog_interval(env)
        self._clock = clock
        self._socket: socket.socket | None = None
        self._ready = False
        self._last_ping = float("-inf")
        self._last_status = float("-inf")
        # systemd needs a ping within WatchdogSec; more than a few per interval is noise for PID 1.
        self._ping_every = min(1.0, self.watchdog_s / 4) if self.watchdog_s else 0.0
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            log.info(
                "sd_notify to %s%s",
                env.get("NOTIFY_SOCKET"),
                f", watchdog every {self.watchdog_s:.1f} s" if self.watchdog_s else "",
            )

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, *fields: str) -> bool:
        """Send "KEY=value" lines in one datagram; False (and a debug log) if systemd is not listening."""
        if self._socket is None:
            return False
        try:
            self._socket.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as exc:
            log.debug("sd_notify failed: %s", exc)
            return False

    def ready(self, status: str = "") -> None:
        if not self._ready:
            self._ready = True
            self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> None:
        """Tell systemd the loop is alive (rate-limited; only when systemd asked for a watchdog)."""
        if not self.watchdog_s:
            return
        now = self._clock()
        if now - self._last_ping >= self._ping_every:
            self._last_ping = now
            self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def reloading(self) -> None:
        """Before a SIGHUP reload; READY=1 follows once the new config runs (Type=notify-reload)."""
        self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        self._ready = False

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    # --- Observer protocol ---

    def on_frame(self, result: FrameResult) -> None:
        status = f"{result.fps:.1f} fps, {len(result.faces)} faces"
        if not self._ready:
            self.ready(status)
            self._last_status = self._clock()
        elif self._clock() - self._last_status >= STATUS_INTERVAL_S:
            self._last_status = self._clock()
            self.status(status)
        self.watchdog()

    def on_event(self, event: AlarmEvent) -> None:
        pass

    def on_camera(self, connected: bool) -> None:
        if not connected and not self._ready:
            # Up and retrying with the fault pattern on: READY, or systemd would fail the start after
            # TimeoutStartSec and kill the retry loop that a camera missing at boot is meant to get.
            self.ready("camera lost, retrying")
            return
        self.status("camera connected" if connected else "camera lost, retrying")

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()


def _socket_address(value: str) -> str | bytes:
    """NOTIFY_SOCKET is a path, or "@name" for the abstract namespace (a leading NUL byte)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value if value.startswith("/") else ""


def _watchdog_interval(env: Mapping[str, str]) -> float:
    """WATCHDOG_USEC in seconds, or 0 if unset or meant for another process (WATCHDOG_PID)."""
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
        pid = env.get("WATCHDOG_PID")
        if pid and int(pid) != os.getpid():
            return 0.0
    except ValueError:
        return 0.0
    return usec / 1e6 if usec > 0 else 0.0
