"""`maskwatch check`: a self-test of config, models, one camera frame and one alarm blink.

setup.sh ends with it and people run it after changing wiring or config. Each check prints one line with
what was tested and, on failure, the fix; the exit status is non-zero if any check failed. It uses the
same code as `run` (config loader, detector, classifier, frame sources, alarm), so passing it means the
daemon can start.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

CAMERA_TIMEOUT_S = 10.0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="self-test: config, models, one camera frame, one alarm blink"
    )
    parser.add_argument("--config", type=Path, help="config file (same default as `run`)")
    parser.add_argument("--source", help="override camera.source for the camera check")
    parser.add_argument("--skip-camera", action="store_true", help="do not open the camera")
    parser.add_argument("--skip-alarm", action="store_true", help="do not blink the alarm outputs")
    parser.add_argument(
        "--outputs-off",
        action="store_true",
        help="only switch every alarm output off and exit (for systemd's ExecStopPost: after a watchdog kill "
        "or SIGKILL the daemon had no chance to do it)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from edge.commands.run import config_path

    checks = Checks()
    config = checks.run("config", lambda: _check_config(config_path(args.config), args.source))
    if getattr(args, "outputs_off", False):  # with or without a config that loads
        checks.run("outputs off", lambda: _outputs_off(config_path(args.config), config))
        return checks.finish()
    if config is None:
        return checks.finish()
    detector = checks.run("face detector", lambda: _check_detector(config))
    checks.run("classifier", lambda: _check_classifier(config, detector))
    if not args.skip_camera:
        checks.run("camera", lambda: _check_camera(config))
    if not args.skip_alarm:
        checks.run("alarm", lambda: _check_alarm(config))
    return checks.finish()


class Checks:
    def __init__(self):
        self.failed: list[str] = []

    def run(self, name: str, check: Callable[[], tuple[object, str]]):
        try:
            value, detail = check()
        except Exception as exc:
            self.failed.append(name)
            print(f"FAIL {name}: {exc}", flush=True)
            log.debug("%s check failed", name, exc_info=True)
            return None
        print(f"ok   {name}: {detail}", flush=True)
        return value

    def finish(self) -> int:
        if self.failed:
            print(f"{len(self.failed)} check(s) failed: {', '.join(self.failed)}", flush=True)
            return 1
        print("all checks passed", flush=True)
        return 0


def _check_config(path: Path | None, source: str | None):
    from edge.config import load_config, replace

    config = load_config(path)
    if source is not None:
        config = replace(config, camera={"source": source})
    return config, f"{path or 'built-in defaults'} (source {config.camera.source})"


def _blank_frame(config):
    import numpy as np

    return np.full((config.camera.height, config.camera.width, 3), 127, np.uint8)


def _check_detector(config):
    from edge.faces import FaceDetector

    detector = FaceDetector.from_config(config)
    t0 = time.perf_counter()
    faces = detector.detect(_blank_frame(config), frame_order="BGR")
    ms = (time.perf_counter() - t0) * 1e3
    if faces:
        raise RuntimeError(f"found {len(faces)} faces in a blank frame: the detector model is wrong")
    return detector, f"{config.detector.strategy} strategy, blank frame in {ms:.1f} ms, no faces"


def _check_classifier(config, detector):
    from edge.classifier import MaskClassifier

    classifier = MaskClassifier(config.classifier.model or None, threads=config.classifier.threads)
    frame = _blank_frame(config)
    t0 = time.perf_counter()
    predictions = classifier.classify(frame, [(200, 150, 300, 270)], frame_order="BGR")
    ms = (time.perf_counter() - t0) * 1e3
    total = sum(predictions[0].scores.values())
    if abs(total - 1.0) > 0.05:
        raise RuntimeError(f"scores sum to {total:.2f}, not 1: the model output is not a softmax")
    return (
        classifier,
        f"{classifier.model_path.name}, labels {', '.join(classifier.labels)}, one face in {ms:.1f} ms",
    )


def _check_camera(config):
    from edge.camera import CameraError, open_source

    source = open_source(config.camera.source, config.camera)
    deadline = time.monotonic() + CAMERA_TIMEOUT_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            source.open()
            frame = source.read()
            if frame is None:
                raise CameraError(f"{source.name}: no frames")
            h, w = frame.shape[:2]
            return frame, f"{source.name}: one {w}x{h} frame, mean brightness {frame.mean():.0f}"
        except CameraError as exc:
            last_error = exc
            time.sleep(1.0)
        finally:
            source.close()
    raise CameraError(f"no frame within {CAMERA_TIMEOUT_S:.0f} s: {last_error}")


def _check_alarm(config):
    from edge.alarm import Alarm

    with Alarm(config.alarm) as alarm:
        outputs = alarm.describe()
        if not outputs:
            return None, "no outputs configured (alarm pins are null)"
        alarm.alert("without_mask")
        time.sleep(0.3)
    return None, f"blinked {outputs} for 0.3 s, all off again"


def _outputs_off(path: Path | None, config):
    """Every pin the daemon may have left on: those it last drove (edge.driven_outputs), remembered
    in the configured state folder and copied to the default one, and the configured ones. With a
    config that does not load, its alarm and events sections are read alone."""
    from edge.alarm import Alarm
    from edge.config import Config
    from edge.driven_outputs import recall
    from edge.observers import state_dir_for

    if config is None:
        config = _sections_alone(path)
    configured = config.alarm
    state_dirs = [state_dir_for(config), state_dir_for(Config())]
    remembered = [recall(folder) for folder in dict.fromkeys(state_dirs)]
    sections = dict.fromkeys(s for s in (*remembered, configured) if s)
    switched = []
    for section in sections:
        with Alarm(section) as alarm:  # opening drives every output to its off level; closing keeps it
            switched.append(alarm.describe())
    return None, "; ".join(s for s in switched if s) or "no outputs configured"


def _sections_alone(path: Path | None):
    """A Config of the file's alarm and events sections read alone (the defaults where they are wrong)."""
    import yaml

    from edge.config import Config, load_sections_alone

    if path is None:
        return Config()
    try:
        sections, errors = load_sections_alone(path, ("alarm", "events"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        sections, errors = {}, {"alarm": exc}
    for name, exc in errors.items():
        default = "the default pins" if name == "alarm" else "the default state folder"
        log.warning("the config's %s section cannot be read either (%s): using %s", name, exc, default)
    return Config(**sections)
