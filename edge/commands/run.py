"""`maskwatch run`: the daemon; `maskwatch run --demo`: the whole loop on a built-in scene with mock GPIO.

Exit codes: 0 after a clean stop (SIGTERM, SIGINT, or a finite source that ended), 2 when it cannot start
(bad config, missing or wrong model, GPIO unavailable: the message says which and how to fix it), 1 when
it crashed while running (outputs are off by then; systemd restarts it). `--demo` also exits 1 when the
whole sequence ran but did not raise exactly the alarms it should (not when --max-frames cut it short).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SYSTEM_CONFIG = Path("/etc/maskwatch/config.yaml")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the alarm (the daemon)",
        description="Watch the entrance and sound the alarm. Logs to stdout; SIGHUP reloads the config.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help=f"config file (default: $MASKWATCH_CONFIG, else {SYSTEM_CONFIG} "
        "if it exists, else the built-in defaults)",
    )
    parser.add_argument(
        "--source",
        help="override camera.source: picamera2, a USB index, a video file, "
        "an rtsp:// URL, an image folder, or demo",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="no camera, no GPIO, no files of yours: a built-in scene, mock GPIO, alarm state printed",
    )
    parser.add_argument("--status-port", type=int, help="turn the status page on at this port (status.port)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames (smoke tests)")
    parser.set_defaults(handler=handle)


def config_path(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    if os.environ.get("MASKWATCH_CONFIG"):
        return Path(os.environ["MASKWATCH_CONFIG"])
    return SYSTEM_CONFIG if SYSTEM_CONFIG.is_file() else None


def handle(args: argparse.Namespace) -> int:
    import faulthandler

    from edge.app import App

    with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):  # stderr without a file
        faulthandler.enable()  # a hung loop killed by systemd's watchdog (SIGABRT) leaves its stack in the journal

    if args.demo:
        return _demo(args)
    path = config_path(args.config)
    log.info("config: %s", path or "built-in defaults")
    app = App(path, source=args.source, status_port=args.status_port, max_frames=args.max_frames)
    return run_app(app)


def run_app(app) -> int:
    try:
        return app.run()
    except Exception as exc:
        if not app.started:
            log.error("cannot start: %s", exc)
            log.debug("details", exc_info=True)
            return 2
        log.exception("crashed after %d frames (outputs are off)", app.frames)
        return 1


def _demo(args: argparse.Namespace, clock=None) -> int:
    """The demo sequence through the real App with mock pins; `clock` lets tests replay it at 15 fps
    of frame time without waiting for it."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from edge.app import App
    from edge.synth.demo import demo_frames

    demo = demo_frames()
    print(f"demo: {len(demo)} frames at {demo.fps} fps, mock GPIO\n{demo.describe()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="maskwatch-demo-") as state_dir:
        app = App(
            args.config,
            source="demo",
            status_port=args.status_port,
            max_frames=args.max_frames,
            pin_factory=MockFactory(pin_class=MockPWMPin),
            state_dir=state_dir,
            **({"clock": clock} if clock is not None else {}),
        )
        printer = DemoPrinter(lambda: app.parts["alarm"].state if "alarm" in app.parts else "off")
        app.extra_observers.append(printer)
        code = run_app(app)
    expected = [alarm for _, alarm in demo.expected_alarms()]
    print(
        f"demo finished: {app.frames} frames, {app.events} alarms ({printer.summary()}); "
        f"the full sequence should raise: {', '.join(expected)}",
        flush=True,
    )
    if code == 0 and args.max_frames is None and app.frames == len(demo) and printer.alarms != expected:
        print(
            f"demo FAILED: the alarms raised ({', '.join(printer.alarms) or 'none'}) are not the expected ones "
            f"({', '.join(expected)}): the detector, classifier or decision settings in use do not see the "
            "scene as the shipped ones do (a different model or config?)",
            flush=True,
        )
        return 1
    return code


class DemoPrinter:
    """Prints what a person at the entrance would see and hear, one line whenever it changes."""

    def __init__(self, alarm_state):
        self._alarm_state = alarm_state
        self._last = ""
        self.alarms: list[str] = []  # the labels of the alarms raised, in order

    def on_frame(self, result) -> None:
        faces = (
            "; ".join(f"#{f.track_id} {f.label or '-'} {f.score:.2f} {f.decision}" for f in result.faces)
            or "nobody"
        )
        line = f"{faces} | alarm: {self._alarm_state()}"
        if line != self._last:
            self._last = line
            print(f"frame {result.index:4d}  {result.fps:4.1f} fps  {line}", flush=True)

    def on_event(self, event) -> None:
        self.alarms.append(event.label)
        print(
            f"ALARM  track #{event.track_id}: {event.label} (p={event.score:.2f}, seen {event.track_length} frames, "
            f"face {event.face_px} px)",
            flush=True,
        )

    def on_camera(self, connected: bool) -> None:
        pass

    def close(self) -> None:
        pass

    def summary(self) -> str:
        return (
            ", ".join(f"{label} x{self.alarms.count(label)}" for label in sorted(set(self.alarms))) or "none"
        )
