"""sd_notify against a real unix datagram socket, the way systemd listens."""

from __future__ import annotations

import os
import socket
import uuid

import numpy as np
import pytest

from edge.results import FrameResult
from edge.sdnotify import SdNotifier


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def systemd(tmp_path):
    """A bound datagram socket standing in for systemd's notify socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(0.0)
    yield path, sock
    sock.close()


def received(sock) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def frame(index=0, fps=15.0) -> FrameResult:
    return FrameResult(
        index=index, timestamp=float(index), frame=np.zeros((4, 4, 3), np.uint8), faces=(), fps=fps
    )


def test_ready_after_the_first_frame_then_watchdog_pings_rate_limited(systemd):
    path, sock = systemd
    clock = Clock()
    notifier = SdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}, clock=clock)
    assert notifier.enabled and notifier.watchdog_s == 2.0
    assert received(sock) == []
    notifier.on_frame(frame(0))
    first = received(sock)
    assert first[0] == "READY=1\nSTATUS=15.0 fps, 0 faces"
    assert first[1:] == ["WATCHDOG=1"]
    for i in range(1, 31):  # two seconds at 15 fps
        clock.now = 100.0 + i / 15
        notifier.on_frame(frame(i))
    # At least every 0.5 s (a quarter of WatchdogSec), not 15 times a second: frames 8, 16 and 24.
    assert received(sock) == ["WATCHDOG=1"] * 3
    notifier.close()


def test_status_with_fps_every_few_seconds(systemd):
    path, sock = systemd
    clock = Clock()
    notifier = SdNotifier({"NOTIFY_SOCKET": path}, clock=clock)
    notifier.on_frame(frame(0))
    clock.now += 11
    notifier.on_frame(frame(1, fps=14.2))
    assert received(sock) == ["READY=1\nSTATUS=15.0 fps, 0 faces", "STATUS=14.2 fps, 0 faces"]


def test_no_watchdog_unless_systemd_asked_for_it_for_this_process(systemd):
    path, sock = systemd
    for env in (
        {"NOTIFY_SOCKET": path},
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"},
    ):
        notifier = SdNotifier(env)
        notifier.watchdog()
        assert received(sock) == []
    mine = SdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())})
    mine.watchdog()
    assert received(sock) == ["WATCHDOG=1"]


def test_camera_state_reload_and_stop_messages(systemd):
    path, sock = systemd
    notifier = SdNotifier({"NOTIFY_SOCKET": path})
    notifier.on_frame(frame(0))
    notifier.on_camera(False)
    notifier.reloading()
    notifier.on_frame(frame(1))
    notifier.stopping()
    messages = received(sock)
    assert messages[1] == "STATUS=camera lost, retrying"
    reloading = messages[2].split("\n")
    assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
    assert messages[3].startswith("READY=1")  # ready again after the reload's first frame
    assert messages[4] == "STOPPING=1"


def test_a_camera_missing_from_the_start_is_ready_and_retrying_not_a_failed_start(systemd):
    path, sock = systemd
    notifier = SdNotifier({"NOTIFY_SOCKET": path})
    notifier.on_camera(False)
    notifier.on_camera(False)
    notifier.on_camera(True)
    notifier.on_frame(frame(0))
    assert received(sock) == [
        "READY=1\nSTATUS=camera lost, retrying",
        "STATUS=camera lost, retrying",
        "STATUS=camera connected",
        "STATUS=15.0 fps, 0 faces",  # READY was sent, so the first frame gives a status only
    ]


def test_abstract_namespace_socket():
    name = f"maskwatch-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    try:
        notifier = SdNotifier({"NOTIFY_SOCKET": f"@{name}"})
        notifier.ready()
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_outside_systemd_it_is_a_silent_no_op(tmp_path):
    notifier = SdNotifier({})
    assert not notifier.enabled
    notifier.on_frame(frame())
    notifier.watchdog()
    notifier.close()
    gone = SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert gone.notify("READY=1") is False
