"""The daemon: builds the stages from config in one flat ordered list, runs the loop, handles signals.

Stages start top to bottom and stop bottom to top, so the alarm (first up, last down) can show a fault
while anything after it fails, and its outputs are switched off after everything else has stopped.
SIGTERM and SIGINT end the loop between frames and everything stops cleanly; SIGHUP reloads config.yaml
and rebuilds only the stages whose config sections changed, keeping the last good config if the new
file is invalid or a stage cannot start with it. Any crash still passes through the `finally` that
switches the outputs off.
"""

from __future__ import annotations

import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config import Config, ConfigError, load_config, replace
from edge.loop import run_loop
from edge.results import Observer
from edge.sdnotify import SdNotifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One part of the running system: what it is built from, how to build and stop it."""

    name: str
    sections: tuple[str, ...]  # the config sections (or "section.key"s) it depends on: a change rebuilds it
    build: Callable[[Config], Any]
    stop: Callable[[Any], None] = lambda stage: stage.close()


class App:
    """`maskwatch run`. Collaborators that tests replace are parameters: pin factory, clock, observers."""

    def __init__(
        self,
        config_path: str | Path | None = None,
        *,
        source: str | None = None,
        status_port: int | None = None,
        pin_factory=None,
        clock: Callable[[], float] = time.monotonic,
        max_frames: int | None = None,
        models_dir: str | Path | None = None,
        state_dir: str | Path | None = None,
        extra_observers: Sequence[Observer] = (),
        notifier: SdNotifier | None = None,
    ):
        self.config_path = Path(config_path) if config_path else None
        self.overrides: dict[str, dict] = {}
        if source is not None:
            self.overrides["camera"] = {"source": str(source)}
        if status_port is not None:
            self.overrides["status"] = {"port": int(status_port)}
        self.pin_factory = pin_factory
        self.clock = clock
        self.max_frames = max_frames
        self.models_dir = models_dir
        self.state_dir = state_dir
        self.extra_observers = list(extra_observers)
        self.notifier = notifier or SdNotifier()
        self.config: Config | None = None
        self.parts: dict[str, Any] = {}
        self.started = False  # True once every stage is up: a failure after that is a crash, not a bad start
        self.frames = 0
        self.events = 0
        self._interrupt = threading.Event()
        self._track_ids = itertools.count(1)  # shared by every Decider built, reloads included
        self._terminate = False
        self._reload = False

    # --- the stages, in start order ----------------------------------------------------------------

    def stages(self) -> list[Stage]:
        from edge.camera import FramePacer, MotionGate, build_source
        from edge.decision import Decider

        return [
            Stage("logging", ("logging",), _apply_log_level, stop=lambda _: None),
            # events.state_dir too: the pins it drives are remembered there for `check --outputs-off`
            Stage("alarm", ("alarm", "events.state_dir"), self._alarm),
            Stage("detector", ("detector", "decision.roi"), self._detector, stop=_close_if_possible),
            Stage("classifier", ("classifier",), self._classifier, stop=_close_if_possible),
            Stage(
                "decider", ("decision",), lambda c: Decider(c.decision, self._track_ids), stop=lambda _: None
            ),
            Stage("source", ("camera",), lambda c: build_source(c.camera, stop=self._interrupt)),
            Stage(
                "pacer",
                ("camera",),
                lambda c: FramePacer(c.camera.fps_limit, wait=self._interrupt.wait),
                stop=lambda _: None,
            ),
            Stage(
                "motion_gate",
                ("camera",),
                lambda c: MotionGate(c.camera.motion_threshold) if c.camera.motion_gate else None,
                stop=lambda _: None,
            ),
            Stage(
                "observers",
                ("status", "events", "mqtt", "logging", "camera"),
                self._observers,
                stop=_close_all,
            ),
        ]

    def _alarm(self, config: Config):
        from edge.alarm import Alarm
        from edge.config import Config
        from edge.driven_outputs import remember, remember_with_default_copy
        from edge.observers import state_dir_for

        alarm = Alarm(config.alarm, pin_factory=self.pin_factory)
        if self.state_dir:  # the demo's and tests' own folder: their pins are no real installation's
            remember(config.alarm, Path(self.state_dir))
        else:
            remember_with_default_copy(config.alarm, state_dir_for(config), state_dir_for(Config()))
        return alarm

    def _detector(self, config: Config):
        from edge.faces import FaceDetector

        return FaceDetector.from_config(config, models_dir=self.models_dir, stream=True)

    def _classifier(self, config: Config):
        from edge.classifier import MaskClassifier

        model = config.classifier.model or (
            Path(self.models_dir) / "mask_classifier.tflite" if self.models_dir else None
        )
        return MaskClassifier(model, threads=config.classifier.threads)

    def _observers(self, config: Config) -> list[Observer]:
        from edge.observers import build_observers
        from edge.stats import StatsReporter

        built = build_observers(config, self.state_dir)
        return [*built, StatsReporter(config.logging.stats_interval_s), *self.extra_observers]

    # --- running -----------------------------------------------------------------------------------

    def load(self) -> Config:
        config = load_config(self.config_path)
        for section, values in self.overrides.items():
            config = replace(config, **{section: values})
        return config

    def run(self) -> int:
        """Start, loop until the source ends or a signal stops us, stop. Exceptions propagate after cleanup."""
        restore = self._install_signal_handlers()
        try:
            self.config = self.load()
            self._start(self.stages(), self.config)
            self.started = True
            log.info("maskwatch running: source %s", self.config.camera.source)
            while True:
                summary = self._run_loop()
                # Cleared before the flags are read: a signal from here on sets it again, so the next
                # loop returns at once and the signal is handled rather than lost.
                self._interrupt.clear()
                if self._terminate or summary.ended != "stopped":
                    log.info(
                        "loop ended (%s) after %d frames, %d alarms",
                        "stopped" if self._terminate else summary.ended,
                        self.frames,
                        self.events,
                    )
                    if (
                        not self._terminate
                    ):  # the clip ended and nobody asked us to stop: let the alarm finish
                        self.parts["alarm"].wait_until_quiet(self.config.alarm.duration_s)
                    return 0
                if self._reload:
                    self._reload = False
                    self.reload()
        finally:
            self.notifier.stopping()
            stages = self.stages()
            # The outputs go off first: closing the rest (an MQTT goodbye to a broker that does not
            # answer, the status server's threads) may take seconds, and the buzzer must not sound on.
            self._stop([stage for stage in stages if stage.name == "alarm"])
            self._stop(stages)
            self.notifier.close()
            restore()

    def _run_loop(self):
        p = self.parts
        # A loop learns the camera's state afresh and clears only a fault it showed itself: one left by
        # the loop before a reload would flash "camera lost" over a camera that works (its source fixed).
        # If the camera is still lost, the new loop's first read shows the fault again.
        p["alarm"].clear_fault()
        remaining = None if self.max_frames is None else max(self.max_frames - self.frames, 0)
        summary = run_loop(
            p["source"],
            p["detector"],
            p["classifier"],
            p["decider"],
            p["alarm"],
            observers=[*p["observers"], self.notifier],
            clock=self.clock,
            stop=self._interrupt,
            max_frames=remaining,
            pacer=p["pacer"],
            motion_gate=p["motion_gate"],
            on_idle=self.notifier.watchdog,
            first_index=self.frames,
        )
        self.frames += summary.frames
        self.events += len(summary.events)
        return summary

    def request_stop(self, *, from_signal: bool = False) -> None:
        self._terminate = True
        _set_event(self._interrupt, from_signal)

    def request_reload(self, *, from_signal: bool = False) -> None:
        self._reload = True
        _set_event(self._interrupt, from_signal)

    def reload(self) -> bool:
        """Re-read the config file; rebuild the stages it changed. False keeps the last good config."""
        self.notifier.reloading()
        try:
            new = self.load()
        except ConfigError as exc:
            log.error("config reload failed, keeping the last good config: %s", exc)
            return False
        except Exception:  # whatever is wrong with the new file, the running daemon must not die of it
            log.exception("config reload failed, keeping the last good config")
            return False
        old = self.config
        changed = _changed_keys(old, new)
        affected = [s for s in self.stages() if changed & set(s.sections)]
        if not affected:
            log.info("config reloaded: nothing changed")
            return True
        log.info(
            "config reloaded: %s changed; restarting %s",
            ", ".join(sorted(c for c in changed if "." not in c)),
            ", ".join(s.name for s in affected),
        )
        self._stop(affected)
        try:
            self._start(affected, new)
        except Exception as exc:
            log.error("the new config cannot start (%s); going back to the last good config", exc)
            self._stop(affected)
            self._start(affected, old)
            return False
        self.config = new
        return True

    def _start(self, stages: list[Stage], config: Config) -> None:
        for stage in stages:
            try:
                self.parts[stage.name] = stage.build(config)
            except BaseException:
                log.debug("stage %s failed to start", stage.name, exc_info=True)
                self._stop([s for s in stages if s.name in self.parts])
                raise

    def _stop(self, stages: list[Stage]) -> None:
        for stage in reversed(stages):
            part = self.parts.pop(stage.name, None)
            if part is None:
                continue
            try:
                stage.stop(part)
            except Exception:
                log.exception("stopping %s failed", stage.name)

    def _install_signal_handlers(self) -> Callable[[], None]:
        """SIGTERM/SIGINT stop, SIGHUP reloads; only possible (and only wanted) on the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_stop(signum, _frame):
            log.info("%s: stopping", signal.Signals(signum).name)
            self.request_stop(from_signal=True)

        def on_hup(_signum, _frame):
            log.info("SIGHUP: reloading %s", self.config_path or "the defaults")
            self.request_reload(from_signal=True)

        handlers = {signal.SIGTERM: on_stop, signal.SIGINT: on_stop, signal.SIGHUP: on_hup}
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


def _changed_keys(old: Config, new: Config) -> set[str]:
    """The sections that differ between `old` and `new`, and each of their keys that does ("decision.roi")."""
    changed = set()
    for name in Config.__dataclass_fields__:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            changed.add(name)
            changed |= {
                f"{name}.{key}"
                for key in type(before).__dataclass_fields__
                if getattr(before, key) != getattr(after, key)
            }
    return changed


def _set_event(event: threading.Event, from_signal: bool) -> None:
    """Set `event`; from a signal handler, on a short-lived thread so that it cannot deadlock.

    Python runs a signal handler on the main thread between two bytecodes, which may be inside
    `event.wait()` (the frame pacer, the camera's retry backoff) while that thread holds the event's
    internal lock; `event.set()` in the handler then waits for that lock forever. A SIGHUP hung the
    daemon that way, and a hung SIGTERM ends in systemd's SIGKILL with the alarm outputs left as they
    were. The thread sets the event as soon as the handler has returned and the lock is free.
    """
    if from_signal:
        threading.Thread(target=event.set, name="maskwatch-signal", daemon=True).start()
    else:
        event.set()


def _apply_log_level(config: Config) -> str:
    logging.getLogger().setLevel(config.logging.level)
    return config.logging.level


def _close_if_possible(part: Any) -> None:
    close = getattr(part, "close", None)
    if close is not None:
        close()


def _close_all(observers: list[Observer]) -> None:
    for observer in reversed(observers):
        try:
            observer.close()
        except Exception:
            log.exception("closing observer %s failed", type(observer).__name__)
