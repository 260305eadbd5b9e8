"""The daemon end to end: config file -> App -> real loop -> mock GPIO pins; real signals; faults.

Two kinds of scenes. With the colour test model (tests/daemon_scenes.py) every answer is known in
advance, so the app's mechanics are tested through real BlazeFace and real TFLite inference on any
machine. With the shipped classifier (models/mask_classifier.tflite) people wear masks drawn by our
synthesizer (tests/fixtures.py); those tests skip, saying why, while the model is not there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from daemon_scenes import (
    COLOR_MODEL,
    REPO,
    SHIPPED_MODEL,
    Recorder,
    StepClock,
    approaching,
    empty,
    write_folder,
)

from edge.app import App
from edge.cli import main as cli_main
from edge.model_metadata import file_sha256

RED, BUZZER, GREEN = 17, 18, 27
needs_shipped_model = pytest.mark.skipif(
    not SHIPPED_MODEL.is_file(),
    reason=f"{SHIPPED_MODEL.relative_to(REPO)} is not built yet (issue: training)",
)


def write_config(path: Path, model: Path | str = COLOR_MODEL, **sections) -> Path:
    data = {
        "classifier": {"model": str(model)},
        "alarm": {"duration_s": 0.4, "ok_led_pin": GREEN},
        "camera": {"fps_limit": 0},
        "logging": {"stats_interval_s": 3600},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def run_app(tmp_path, pins, frames, config=None, **kwargs) -> tuple[App, Recorder, int]:
    source = write_folder(frames, tmp_path / "frames")
    recorder = Recorder()
    app = App(
        config or write_config(tmp_path / "config.yaml"),
        source=str(source),
        pin_factory=pins,
        clock=StepClock(),
        state_dir=tmp_path / "state",
        extra_observers=[recorder],
        **kwargs,
    )
    return app, recorder, app.run()


def assert_all_off_and_released(pins, *numbers):
    for n in numbers:
        pin = pins.pin(n)
        assert not pin.state, f"GPIO{n} left on"
        assert pin.function == "input", f"GPIO{n} not released"


# --- the alarm through the whole app ------------------------------------------------------------------


def test_a_violator_sounds_the_alarm_once(tmp_path, pins):
    frames = empty(3) + approaching("without_mask", 30) + empty(3)
    app, recorder, code = run_app(tmp_path, pins, frames)
    assert code == 0 and app.frames == 36
    assert [e.label for e in recorder.events] == ["without_mask"]
    for pin in (RED, BUZZER):  # one 0.4 s pattern (0.1 s on, 0.1 s off, twice), never restarted
        pins.pin(pin).assert_states([False, True, False, True, False])
        assert len(pins.pin(pin).states) == 5
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


def test_the_alarm_pattern_plays_out_when_a_clip_ends_mid_alarm(tmp_path, pins):
    # Decided on the clip's last frame: the app lets the pattern finish before it switches outputs off,
    # and with the loop idle its timing is exact.
    app, recorder, code = run_app(tmp_path, pins, empty(2) + approaching("without_mask", 3, 80, 110))
    assert code == 0 and [e.label for e in recorder.events] == ["without_mask"]
    for pin in (RED, BUZZER):
        states = pins.pin(pin).states
        pins.pin(pin).assert_states_and_times(
            [(0, False), (states[1].timestamp, True), (0.1, False), (0.1, True), (0.1, False)]
        )
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


def test_a_masked_person_never_sounds_it(tmp_path, pins):
    app, recorder, code = run_app(tmp_path, pins, approaching("with_mask", 40))
    assert code == 0 and recorder.events == []
    assert [s.state for s in pins.pin(RED).states] == [False]
    assert [s.state for s in pins.pin(BUZZER).states] == [False]
    assert [s.state for s in pins.pin(GREEN).states][:2] == [False, True], "green LED: ok to enter"
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


def test_sigterm_in_process_turns_every_output_off(tmp_path, pins):
    config = write_config(
        tmp_path / "config.yaml", camera={"loop": True, "fps_limit": 0}, alarm={"duration_s": 30}
    )

    def kill_after_alarm(result):
        if any(f.decision == "violation" for f in result.faces):
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal to this process, mid-alarm

    source = write_folder(approaching("without_mask", 10), tmp_path / "frames")
    app = App(
        config,
        source=str(source),
        pin_factory=pins,
        clock=StepClock(),
        state_dir=tmp_path / "state",
        extra_observers=[Recorder(on_frame=kill_after_alarm)],
    )
    handler_before = signal.getsignal(signal.SIGTERM)
    assert app.run() == 0
    assert True in [s.state for s in pins.pin(RED).states], "the alarm was sounding"
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)
    assert signal.getsignal(signal.SIGTERM) is handler_before, "the app put back the handler it replaced"


def test_on_sigterm_the_outputs_go_off_before_the_slower_parts_close(tmp_path, pins):
    """Closing observers can take seconds (an MQTT goodbye waits up to its timeout per step): a buzzer
    sounding mid-alarm must be off and released before any observer is closed."""
    config = write_config(
        tmp_path / "config.yaml", camera={"loop": True, "fps_limit": 0}, alarm={"duration_s": 30}
    )
    seen_at_close = {}

    class SlowToClose(Recorder):
        def close(self):
            seen_at_close.update({n: (pins.pin(n).function, pins.pin(n).state) for n in (RED, BUZZER)})

    def kill_after_alarm(result):
        if any(f.decision == "violation" for f in result.faces):
            os.kill(os.getpid(), signal.SIGTERM)

    source = write_folder(approaching("without_mask", 10), tmp_path / "frames")
    app = App(config, source=str(source), pin_factory=pins, clock=StepClock(), state_dir=tmp_path / "state",
              extra_observers=[SlowToClose(on_frame=kill_after_alarm)])  # fmt: skip
    assert app.run() == 0
    assert True in [s.state for s in pins.pin(BUZZER).states], "the buzzer was sounding"
    assert seen_at_close == {RED: ("input", False), BUZZER: ("input", False)}


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_a_signal_that_arrives_while_the_loop_waits_on_its_event_wakes_it_without_deadlock(signum):
    # The frame pacer and the camera's retry backoff wait on the app's event; Python may run the
    # handler while the main thread holds that event's lock. Setting the event right in the handler
    # hung the daemon for good (seen once in test_sighup_reloads_...). A subprocess, so a hang fails.
    script = f"""
import os, signal
from edge.app import App
app = App()
restore = app._install_signal_handlers()
with app._interrupt._cond:  # where the main thread is while it waits on the event
    os.kill(os.getpid(), {int(signum)})
    for _ in range(10000):  # the handler runs between these bytecodes, the lock held
        pass
assert app._interrupt.wait(5), "the signal did not wake the loop"
print("reload" if app._reload else "terminate" if app._terminate else "nothing")
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[1],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == ("reload" if signum == signal.SIGHUP else "terminate")


def test_a_crash_mid_run_still_turns_the_outputs_off(tmp_path, pins):
    class CrashingApp(App):
        def _detector(self, config):
            real = super()._detector(config)
            calls = []

            class Crashes:
                def detect(self, frame, frame_order="BGR"):
                    calls.append(1)
                    if len(calls) == 8:
                        raise RuntimeError("detector bug")
                    return real.detect(frame, frame_order)

            return Crashes()

    source = write_folder(approaching("without_mask", 10), tmp_path / "frames")
    app = CrashingApp(
        write_config(tmp_path / "c.yaml", alarm={"duration_s": 30}),
        source=str(source),
        pin_factory=pins,
        clock=StepClock(),
        state_dir=tmp_path / "state",
    )
    with pytest.raises(RuntimeError, match="detector bug"):
        app.run()
    assert True in [s.state for s in pins.pin(RED).states], "the alarm was sounding when it crashed"
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


# --- faults ---------------------------------------------------------------------------------------------


def test_the_source_fails_and_comes_back(tmp_path, pins):
    folder = tmp_path / "camera"
    folder.mkdir()  # no images yet: the "camera" cannot open
    config = write_config(
        tmp_path / "config.yaml",
        camera={"loop": True, "fps_limit": 0, "retry_initial_s": 0.1, "retry_max_s": 1.0},
    )
    app = None

    def stop_after_some_frames(result):
        if result.index == 5:
            app.request_stop()

    recorder = Recorder(on_frame=stop_after_some_frames)
    app = App(
        config,
        source=str(folder),
        pin_factory=pins,
        clock=StepClock(),
        state_dir=tmp_path / "state",
        extra_observers=[recorder],
    )
    plug_in = threading.Timer(0.6, lambda: write_folder(empty(3), folder))
    plug_in.start()
    try:
        assert app.run() == 0
    finally:
        plug_in.cancel()
    assert recorder.camera == [False, True]
    assert len(recorder.frames) == 6
    red = [s.state for s in pins.pin(RED).states]
    assert red[:3] == [False, True, False], "the fault flash showed while the camera was lost"
    assert [s.state for s in pins.pin(BUZZER).states] == [False], "a lost camera is silent"
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


def test_bad_config_exits_2_naming_the_key(tmp_path, caplog):
    config = tmp_path / "config.yaml"
    config.write_text("alarm:\n  buzer_pin: 18\n")
    assert cli_main(["run", "--config", str(config), "--source", str(tmp_path)]) == 2
    assert "alarm.buzer_pin: unknown key (did you mean alarm.buzzer_pin?)" in caplog.text


def test_a_missing_model_exits_2_saying_where_it_looked(tmp_path, pins, caplog):
    config = write_config(tmp_path / "config.yaml", model=tmp_path / "nope.tflite")
    app = App(
        config,
        source=str(write_folder(empty(1), tmp_path / "f")),
        pin_factory=pins,
        state_dir=tmp_path / "state",
    )
    from edge.commands.run import run_app as run_command

    assert run_command(app) == 2
    assert f"classifier model {tmp_path / 'nope.tflite'} not found" in caplog.text
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


def test_a_wrong_model_exits_2_saying_what_disagrees(tmp_path, pins, caplog):
    model = tmp_path / "model.tflite"
    shutil.copy(COLOR_MODEL, model)
    meta = json.loads(COLOR_MODEL.with_suffix(".json").read_text())
    meta["labels"] = meta["labels"][:2]
    model.with_suffix(".json").write_text(json.dumps(meta))
    app = App(
        write_config(tmp_path / "config.yaml", model=model),
        source=str(write_folder(empty(1), tmp_path / "f")),
        pin_factory=pins,
        state_dir=tmp_path / "state",
    )
    from edge.commands.run import run_app as run_command

    assert run_command(app) == 2
    assert "model has 3 outputs, metadata lists 2 labels" in caplog.text
    # A file that is not a TFLite model at all:
    model.write_bytes(b"not a model")
    model.with_suffix(".json").write_text(
        json.dumps({**meta, "labels": meta["labels"] + ["x"], "model_sha256": file_sha256(model)})
    )
    assert (
        run_command(
            App(
                write_config(tmp_path / "config.yaml", model=model),
                source=str(tmp_path / "f"),
                pin_factory=pins,
                state_dir=tmp_path / "state",
            )
        )
        == 2
    )


@contextlib.contextmanager
def started_app(tmp_path: Path, pins):
    """An App with its stages started on two empty frames, stopped after; every output then off."""
    config = write_config(tmp_path / "config.yaml")
    app = App(
        config, source=str(write_folder(empty(2), tmp_path / "f")), pin_factory=pins, state_dir=tmp_path / "s"
    )
    app.config = app.load()
    app._start(app.stages(), app.config)
    try:
        yield config, app
    finally:
        app._stop(app.stages())
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


def test_a_reload_whose_new_model_cannot_start_goes_back_to_the_last_good_one(tmp_path, pins, caplog):
    with started_app(tmp_path, pins) as (config, app):
        good, classifier = app.config, app.parts["classifier"]
        write_config(config, model=tmp_path / "nope.tflite")
        assert app.reload() is False
        assert "the new config cannot start" in caplog.text and "nope.tflite not found" in caplog.text
        assert app.config is good and app.parts["classifier"] is not classifier, "rebuilt from the last good"
        assert app.parts["classifier"].model_path == COLOR_MODEL
        assert app._run_loop().frames == 2, "the loop runs on with the last good config"


def test_a_reload_of_a_file_that_is_not_utf_8_keeps_the_last_good_config(tmp_path, pins, caplog):
    with started_app(tmp_path, pins) as (config, app):
        good = app.config
        config.write_bytes("alarm:\n  led_pin: 22  # entrée\n".encode("latin-1"))
        assert app.reload() is False
        assert "keeping the last good config" in caplog.text and "line 2 is not UTF-8" in caplog.text
        assert app.config is good
        assert app._run_loop().frames == 2


def test_a_reload_that_moves_the_roi_rebuilds_the_detector_and_others_of_the_section_do_not(tmp_path, pins):
    with started_app(tmp_path, pins) as (config, app):
        assert app.parts["detector"].roi == ()
        write_config(config, decision={"roi": [0.25, 0.0, 0.75, 1.0]})
        assert app.reload() is True
        detector = app.parts["detector"]
        assert detector.stream and detector.roi == (0.25, 0.0, 0.75, 1.0), "the daemon's detector, new ROI"
        write_config(config, decision={"roi": [0.25, 0.0, 0.75, 1.0], "cooldown_s": 5})
        assert app.reload() is True
        assert app.parts["detector"] is detector, "only the ROI of the decision section concerns it"


def test_a_person_after_a_reload_never_takes_the_track_id_of_one_before_it(tmp_path, pins):
    """Observers keep snapshots and counts by track id; a reused id would mix two people up."""
    config = write_config(tmp_path / "config.yaml")
    app: App

    def reload_at_frame_10(result):
        if result.index == 10:
            write_config(config, decision={"cooldown_s": 5})  # the decision section: a new Decider
            app.request_reload()

    recorder = Recorder(on_frame=reload_at_frame_10)
    source = write_folder(approaching("with_mask", 20), tmp_path / "frames")
    app = App(config, source=str(source), pin_factory=pins, clock=StepClock(), state_dir=tmp_path / "s",
              extra_observers=[recorder])  # fmt: skip
    assert app.run() == 0 and app.frames == 20
    ids = [{face.track_id for face in frame.faces} for frame in recorder.frames]
    before, after = set().union(*ids[:11]), set().union(*ids[11:])
    assert before and after, "the person is tracked on both sides of the reload"
    assert not before & after


def test_a_reload_that_brings_the_camera_back_ends_the_fault_flash(tmp_path, pins):
    # The camera was lost (the fault flash on), the user fixed camera.source and sent SIGHUP: the
    # source is rebuilt, the alarm is not, and the frames must not run under a "camera lost" flash.
    lost = tmp_path / "not-plugged-in"
    lost.mkdir()
    camera = {"loop": True, "fps_limit": 0, "retry_initial_s": 0.1, "retry_max_s": 1.0}
    config = write_config(tmp_path / "config.yaml", camera={**camera, "source": str(lost)})
    app: App
    alarm_states = []

    def stop_after_some_frames(result):
        alarm_states.append(app.parts["alarm"].state)
        if result.index == 3:
            app.request_stop()

    def fix_the_source():
        source = write_folder(empty(3), tmp_path / "frames")
        write_config(config, camera={**camera, "source": str(source)})
        app.request_reload()

    app = App(config, pin_factory=pins, clock=StepClock(), state_dir=tmp_path / "s",
              extra_observers=[Recorder(on_frame=stop_after_some_frames)])  # fmt: skip
    reload = threading.Timer(0.5, fix_the_source)
    reload.start()
    try:
        assert app.run() == 0
    finally:
        reload.cancel()
    assert True in [s.state for s in pins.pin(RED).states], "the fault flash showed while the camera was lost"
    assert alarm_states == ["idle"] * 4, "no fault pattern once frames come"
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


def test_a_reload_that_moves_the_state_folder_remembers_the_alarm_pins_there(tmp_path, pins):
    # `maskwatch check --outputs-off` (after a crash) looks for the pins the daemon drove in the
    # state folder of config.yaml: after a reload that moved it, they must be found there.
    from edge.driven_outputs import recall

    config = write_config(tmp_path / "config.yaml", events={"state_dir": str(tmp_path / "old")})
    app = App(config, source=str(write_folder(empty(2), tmp_path / "f")), pin_factory=pins)
    app.config = app.load()
    app._start(app.stages(), app.config)
    try:
        assert recall(tmp_path / "old") == app.config.alarm
        write_config(config, events={"state_dir": str(tmp_path / "new")})
        assert app.reload() is True
        assert recall(tmp_path / "new") == app.config.alarm
    finally:
        app._stop(app.stages())
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


class _SignalAtClear(threading.Event):
    """The app's interrupt event; a SIGTERM lands in the instant before its first clear()."""

    def __init__(self):
        super().__init__()
        self.app: App | None = None

    def clear(self):
        if self.app is not None and not self.app._terminate:
            self.app.request_stop()
        super().clear()


def test_a_sigterm_as_a_reload_begins_is_not_lost(tmp_path, pins):
    app = App(write_config(tmp_path / "config.yaml"), source=str(write_folder(empty(40), tmp_path / "f")),
              pin_factory=pins, clock=StepClock(), state_dir=tmp_path / "s",
              extra_observers=[Recorder(on_frame=lambda r: r.index == 4 and app.request_reload())])  # fmt: skip
    app._interrupt = _SignalAtClear()
    app._interrupt.app = app
    assert app.run() == 0
    assert app.frames == 5, "stopped where the SIGTERM came, not at the clip's end"
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


# --- a real daemon process: signals from outside ---------------------------------------------------------


class Daemon:
    """`python -m edge run` in a subprocess with mock GPIO, a notify socket and its log on a pipe."""

    def __init__(self, tmp_path: Path, config: Path, source: Path):
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(tmp_path / "notify"))
        env = {
            **os.environ,
            "GPIOZERO_PIN_FACTORY": "mock",
            "NOTIFY_SOCKET": str(tmp_path / "notify"),
            "MASKWATCH_STATE_DIR": str(tmp_path / "state"),
            "PYTHONUNBUFFERED": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config), "--source", str(source)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []

    def wait_notify(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        self.notify.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                if text in self.notify.recv(4096).decode():
                    return
            except TimeoutError:
                if self.process.poll() is not None:
                    break
        self.kill()
        raise AssertionError(f"no {text} from the daemon; its output:\n{self.process.stdout.read()[-3000:]}")

    def wait_line(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip())
            if text in line:
                return line
        raise AssertionError(f"no log line with {text!r}; got:\n" + "\n".join(self.lines[-30:]))

    def finish(self, timeout: float = 30) -> int:
        out, _ = self.process.communicate(timeout=timeout)
        self.lines += out.splitlines()
        self.notify.close()
        return self.process.returncode

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.notify.close()


@pytest.fixture
def daemon_factory():
    started = []

    def start(*args):
        started.append(Daemon(*args))
        return started[-1]

    yield start
    for daemon in started:
        daemon.kill()


def test_sigterm_to_the_daemon_mid_alarm_leaves_every_output_off(tmp_path, daemon_factory):
    source = write_folder(approaching("without_mask", 20), tmp_path / "frames")
    config = write_config(
        tmp_path / "config.yaml", camera={"loop": True, "fps_limit": 15}, alarm={"duration_s": 30}
    )
    daemon = daemon_factory(tmp_path, config, source)
    daemon.wait_notify("READY=1")
    daemon.wait_line("output red LED GPIO17: blink 0.1 s on / 0.1 s off")  # the alarm is sounding
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.finish() == 0
    log = "\n".join(daemon.lines)
    assert "SIGTERM: stopping" in log
    released = "alarm outputs off and released: red LED GPIO17=off, buzzer GPIO18=off, green LED GPIO27=off"
    last = max((i for i, line in enumerate(daemon.lines) if line.endswith(released)), default=None)
    assert last is not None, log[-2000:]
    assert not [line for line in daemon.lines[last:] if "edge.alarm" in line and released not in line], (
        "no output changed after they were released"
    )


def test_sighup_reloads_the_config_and_keeps_the_last_good_one_on_error(tmp_path, daemon_factory):
    source = write_folder(empty(5), tmp_path / "frames")
    config = write_config(tmp_path / "config.yaml", camera={"loop": True, "fps_limit": 15})
    daemon = daemon_factory(tmp_path, config, source)
    daemon.wait_notify("READY=1")
    write_config(config, camera={"loop": True, "fps_limit": 15}, decision={"cooldown_s": 5})
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_line("config reloaded: decision changed; restarting decider")
    daemon.wait_notify("READY=1")  # frames flow again after the reload
    config.write_text("decision:\n  cooldown_s: -1\n")
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_line("config reload failed, keeping the last good config")
    daemon.wait_notify("READY=1")
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.finish() == 0
    log = "\n".join(daemon.lines)
    assert "decision.cooldown_s: -1.0 is out of range" in log


# --- with the shipped classifier and drawn masks ---------------------------------------------------------


@needs_shipped_model
def test_shipped_model_a_person_without_a_mask_alarms_once_a_masked_one_never(tmp_path, pins):
    from fixtures import person_passes

    frames = person_passes("correct").frames + person_passes(None).frames
    app, recorder, code = run_app(tmp_path, pins, frames, config=write_config(tmp_path / "c.yaml", model=""))
    assert code == 0
    assert [e.label for e in recorder.events] == ["without_mask"]
    first_seen = next(r.timestamp for r in recorder.frames[len(frames) // 2 :] if r.faces)
    assert recorder.events[0].timestamp - first_seen <= 0.5


@needs_shipped_model
@pytest.mark.slow
def test_shipped_model_no_alarm_from_1000_frames_of_masked_faces(tmp_path, pins):
    from fixtures import walking_towards_camera

    from edge.camera import FrameListSource

    frames = (
        walking_towards_camera("correct", 50).frames
        + walking_towards_camera("correct", 50, mirrored=True).frames
    )

    class MaskedApp(App):
        def stages(self):
            stages = super().stages()
            source = next(s for s in stages if s.name == "source")
            stages[stages.index(source)] = type(source)(
                "source", source.sections, lambda c: FrameListSource(frames, loop=True)
            )
            return stages

    recorder = Recorder()
    app = MaskedApp(
        write_config(tmp_path / "c.yaml", model=""),
        pin_factory=pins,
        clock=StepClock(),
        max_frames=1000,
        state_dir=tmp_path / "state",
        extra_observers=[recorder],
    )
    assert app.run() == 0 and app.frames == 1000
    assert recorder.events == []
    assert [s.state for s in pins.pin(BUZZER).states] == [False]


# --- the other commands of the daemon ---------------------------------------------------------------------


def test_demo_runs_the_whole_loop_with_mock_gpio_and_prints_the_alarm_state(tmp_path, capsys):
    from argparse import Namespace

    from edge.commands import run

    config = write_config(tmp_path / "config.yaml")  # the colour model: everyone is "with_mask", no alarm
    args = Namespace(demo=True, config=config, source=None, status_port=None, max_frames=25)
    assert run.handle(args) == 0
    out = capsys.readouterr().out
    assert "empty corridor" in out  # the timeline
    assert "| alarm: idle" in out
    assert "demo finished: 25 frames, 0 alarms" in out


def test_demo_exits_1_when_the_whole_sequence_misses_its_alarms(tmp_path, capsys):
    from argparse import Namespace

    from edge.commands import run

    config = write_config(tmp_path / "config.yaml")  # the colour model: everyone is "with_mask", no alarm
    args = Namespace(demo=True, config=config, source=None, status_port=None, max_frames=None)
    assert run._demo(args, clock=StepClock(15)) == 1
    out = capsys.readouterr().out
    assert "demo FAILED: the alarms raised (none) are not the expected ones" in out


@needs_shipped_model
@pytest.mark.slow
def test_demo_with_the_shipped_model_raises_exactly_the_expected_alarms(tmp_path, capsys):
    from argparse import Namespace

    from edge.commands import run

    config = write_config(tmp_path / "config.yaml", model="")  # fps_limit 0, frame time from a 15 fps clock
    args = Namespace(demo=True, config=config, source=None, status_port=None, max_frames=None)
    assert run._demo(args, clock=StepClock(15)) == 0
    out = capsys.readouterr().out
    assert "(mask_weared_incorrect x1, without_mask x1)" in out, out[-3000:]
    assert "alarm: no mask" in out and "alarm: mask worn wrongly" in out


def test_check_passes_with_models_camera_and_mock_alarm(tmp_path, pins, capsys):
    from argparse import Namespace

    from edge.commands import check

    config = write_config(tmp_path / "config.yaml")
    source = write_folder(empty(1), tmp_path / "frames")
    args = Namespace(config=config, source=str(source), skip_camera=False, skip_alarm=False)
    assert check.handle(args) == 0
    out = capsys.readouterr().out
    for name in ("config", "face detector", "classifier", "camera", "alarm"):
        assert f"ok   {name}:" in out
    assert [s.state for s in pins.pin(RED).states][:3] == [False, True, False], "one blink"


def test_check_fails_on_a_missing_model_and_a_camera_with_no_frames(tmp_path, pins, capsys, monkeypatch):
    from argparse import Namespace

    from edge.commands import check

    config = write_config(tmp_path / "config.yaml", model=tmp_path / "missing.tflite")
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(check, "CAMERA_TIMEOUT_S", 0.5)
    args = Namespace(config=config, source=str(tmp_path / "empty"), skip_camera=False, skip_alarm=True)
    assert check.handle(args) == 1
    out = capsys.readouterr().out
    assert "FAIL classifier: classifier model" in out and "FAIL camera:" in out
    assert "2 check(s) failed: classifier, camera" in out


def leave_on(pins, *numbers: int) -> None:
    """What a daemon killed mid-alarm leaves behind: these pins driven on."""
    for n in numbers:
        pins.pin(n).function = "output"
        pins.pin(n).state = True


def check_outputs_off(config: Path) -> int:
    """`maskwatch check --config CONFIG --outputs-off`, as systemd's ExecStopPost runs it."""
    from argparse import Namespace

    from edge.commands import check

    args = Namespace(config=config, source=None, skip_camera=True, skip_alarm=True, outputs_off=True)
    return check.handle(args)


def test_check_outputs_off_drives_every_output_to_off(tmp_path, pins, capsys):

    leave_on(pins, RED, BUZZER)  # what a killed daemon may leave behind: outputs driven on
    config = write_config(tmp_path / "config.yaml")
    assert check_outputs_off(config) == 0
    assert "ok   outputs off: red LED GPIO17, buzzer GPIO18, green LED GPIO27" in capsys.readouterr().out
    assert_all_off_and_released(pins, RED, BUZZER, GREEN)


def test_check_outputs_off_after_a_bad_edit_switches_off_the_pins_the_daemon_drove_and_the_new_ones(
    tmp_path, pins, capsys, monkeypatch
):

    monkeypatch.setenv("MASKWATCH_STATE_DIR", str(tmp_path / "state"))  # as systemd gives both commands
    config = write_config(tmp_path / "config.yaml")
    app, _, code = run_app(tmp_path, pins, empty(2), config=config)  # drives 17, 18 and 27
    assert code == 0
    # rewired and saved with a mistake elsewhere: SIGHUP would refuse it, so the daemon kept 17/18/27
    config.write_text("alarm:\n  led_pin: 22\n  buzzer_pin: 23\ncamera:\n  fps_limit: fast\n")
    leave_on(pins, RED, BUZZER, 22, 23)  # left on by a daemon killed mid-alarm
    assert check_outputs_off(config) == 1, "the config check still fails"
    out = capsys.readouterr().out
    assert "FAIL config" in out and "camera.fps_limit" in out
    assert (
        "ok   outputs off: red LED GPIO17, buzzer GPIO18, green LED GPIO27; red LED GPIO22, buzzer GPIO23"
        in out
    )
    assert_all_off_and_released(pins, RED, BUZZER, GREEN, 22, 23)


def test_check_outputs_off_after_a_bad_edit_finds_the_driven_pins_in_the_configured_state_folder(
    tmp_path, pins, capsys, monkeypatch
):
    """events.state_dir moved the daemon's memory of its pins; a typo in another section must not hide it."""

    default_state = tmp_path / "default-state"
    monkeypatch.setenv("MASKWATCH_STATE_DIR", str(default_state))
    state = tmp_path / "custom-state"
    config = write_config(tmp_path / "config.yaml", events={"state_dir": str(state)})
    app = App(config, source=str(write_folder(empty(2), tmp_path / "f")), pin_factory=pins, clock=StepClock())
    assert app.run() == 0  # drove 17, 18 and 27, remembered in events.state_dir
    assert (state / "alarm-outputs.json").exists()
    (default_state / "alarm-outputs.json").unlink()  # the copy: only the configured folder may find them now
    config.write_text(
        f"events:\n  state_dir: {state}\nalarm:\n  led_pin: 22\n  buzzer_pin: 23\ncamera:\n  fps_limit: fast\n"
    )
    leave_on(pins, RED, BUZZER, GREEN, 22, 23)  # left on by a daemon killed mid-alarm
    assert check_outputs_off(config) == 1, "the config check still fails"
    assert "red LED GPIO17, buzzer GPIO18, green LED GPIO27" in capsys.readouterr().out
    assert_all_off_and_released(pins, RED, BUZZER, GREEN, 22, 23)


def test_check_outputs_off_finds_the_driven_pins_after_the_state_folder_moved_twice(
    tmp_path, pins, capsys, monkeypatch
):
    """A reload moved events.state_dir (the daemon re-remembered its pins there); a later edit, never
    reloaded, moves it again and breaks another section. The configured folder is not where the daemon
    wrote: the copy in the default folder still names the pins it drove."""

    monkeypatch.setenv("MASKWATCH_STATE_DIR", str(tmp_path / "default-state"))
    config = write_config(tmp_path / "config.yaml", events={"state_dir": str(tmp_path / "first")})
    app = App(config, source=str(write_folder(empty(2), tmp_path / "f")), pin_factory=pins)
    app.config = app.load()
    app._start(app.stages(), app.config)
    try:
        moved = {"state_dir": str(tmp_path / "second")}
        write_config(config, events=moved, alarm={"led_pin": 22, "buzzer_pin": 23, "ok_led_pin": None})
        assert app.reload() is True  # now drives 22 and 23
    finally:
        app._stop(app.stages())
    config.write_text(
        f"events:\n  state_dir: {tmp_path / 'third'}\nalarm:\n  led_pin: 24\n  buzzer_pin: 25\n"
        "camera:\n  fps_limit: fast\n"
    )
    leave_on(pins, 22, 23, 24, 25)  # left on by a daemon killed mid-alarm
    assert check_outputs_off(config) == 1, "the config check still fails"
    out = capsys.readouterr().out
    assert "red LED GPIO22, buzzer GPIO23" in out and "red LED GPIO24, buzzer GPIO25" in out
    assert_all_off_and_released(pins, 22, 23, 24, 25)


def test_check_outputs_off_with_an_unreadable_config_and_nothing_remembered_uses_the_default_pins(
    tmp_path, pins, capsys
):

    config = tmp_path / "config.yaml"
    config.write_text("alarm: [\n")
    leave_on(pins, RED, BUZZER)
    assert check_outputs_off(config) == 1
    assert "ok   outputs off: red LED GPIO17, buzzer GPIO18" in capsys.readouterr().out
    assert_all_off_and_released(pins, RED, BUZZER)
