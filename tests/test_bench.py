"""`maskwatch bench` measures the real loop: a short run with the colour test model gives a sane table."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from daemon_scenes import COLOR_MODEL

from edge.commands import bench
from edge.config import ConfigError
from edge.decision import Observation


def test_bench_frames_hold_one_and_six_detectable_faces():
    from edge.faces import FaceDetector

    detector = FaceDetector()
    assert len(detector.detect(bench.bench_frame(1))) == 1
    assert len(detector.detect(bench.bench_frame(6))) == 6


def test_measure_runs_the_loop_and_reports_every_stage():
    row = bench.measure(faces=1, threads=1, frames=5, classifier_path=COLOR_MODEL, warmup=1)
    assert row.frames == 5 and row.fps > 0 and row.cpu_ms > 0
    assert set(row.ms) == set(bench.STAGES)
    assert row.ms["total"] >= row.ms["detect"] > 0 and row.ms["classify"] > 0
    table = bench.table([row], {"start_to_first_result_s": 0.5})
    assert "faces threads   fps" in table and "start to first result s: 0.50" in table
    assert row.case == "steady" and "steady" in table


def test_the_worst_case_searches_every_frame_in_full_and_classifies_every_face():
    from edge.config import Config

    worst = bench.worst_case(Config())
    assert worst.detector.fine_every == 1 and worst.decision.reclassify_every == 1
    assert worst.detector.fine_size == Config().detector.fine_size  # nothing else changes


def test_the_bench_detector_is_the_daemons_with_the_configs_roi():
    from edge.config import Config, replace

    config = replace(Config(), decision={"roi": [0.25, 0.25, 0.75, 0.75]})
    detector, _, decider = bench.build_pipeline(2, COLOR_MODEL, config)
    assert detector.stream and detector.roi == (0.25, 0.25, 0.75, 0.75) and detector.config.threads == 2
    assert decider.config.roi == [0.25, 0.25, 0.75, 0.75]


def test_the_bench_never_sets_its_still_picture_aside_however_long_it_runs():
    from edge.config import Config

    _, _, decider = bench.build_pipeline(1, COLOR_MODEL, Config())
    assert Config().decision.still_face_s > 0 and decider.config.still_face_s == 0
    box = (280.0, 140.0, 360.0, 260.0)
    for step in range(1200):  # ten minutes of the same face, twice a second: classified all along
        assert decider.to_classify(step / 2, (640, 480), [box]) == [True], f"set aside at {step / 2} s"
        decider.update(step / 2, (640, 480), [Observation(box, "with_mask", 0.55, {})])


def write_config(tmp_path, text: str):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


USERS_CONFIG = """\
decision:
  reclassify_every: 5
status:
  port: 8080
mqtt:
  host: broker.lan
events:
  state_dir: /var/lib/maskwatch
camera:
  fps_limit: 10
"""


class StubChild:
    """Stands in for `maskwatch run`: remembers its command and config, and sends READY=1 at once."""

    runs: list = []

    def __init__(self, command, env, **_):
        config = yaml.safe_load(Path(command[command.index("--config") + 1]).read_text())
        StubChild.runs.append((command, config))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ready:
            ready.sendto(b"READY=1", env["NOTIFY_SOCKET"])

    def terminate(self):
        pass

    def wait(self, timeout=None):
        return 0


def test_first_result_runs_the_users_config_changing_only_what_the_measurement_needs(tmp_path, monkeypatch):
    StubChild.runs = []
    monkeypatch.setattr(bench.subprocess, "Popen", StubChild)
    seconds = bench.start_to_first_result_s(None, write_config(tmp_path, USERS_CONFIG))
    assert 0 < seconds < 5
    ((command, config),) = StubChild.runs
    assert command[-3:-1] == ["run", "--config"]
    assert config["decision"] == {"reclassify_every": 5} and config["camera"]["fps_limit"] == 10, "yours"
    assert config["camera"]["source"].endswith("frame.png") and config["camera"]["loop"] is True
    assert config["status"]["port"] == 0 and config["mqtt"]["host"] == "", "no clash with a running daemon"
    assert config["events"]["state_dir"] != "/var/lib/maskwatch"
    assert "classifier" not in config, "the model is yours too unless --classifier says otherwise"
    bench.start_to_first_result_s(COLOR_MODEL, None)
    assert StubChild.runs[-1][1]["classifier"] == {"model": str(COLOR_MODEL)}


def test_first_result_with_a_bad_config_names_the_key_before_starting_anything(tmp_path, monkeypatch):
    monkeypatch.setattr(bench.subprocess, "Popen", StubChild)
    with pytest.raises(ConfigError, match="decision.reclasify_every: unknown key"):
        bench.start_to_first_result_s(None, write_config(tmp_path, "decision:\n  reclasify_every: 5\n"))


def test_first_result_of_a_real_maskwatch_run_with_your_config(tmp_path):
    config = write_config(tmp_path, "decision:\n  reclassify_every: 5\nlogging:\n  level: WARNING\n")
    assert 0 < bench.start_to_first_result_s(COLOR_MODEL, config, timeout_s=60) < 60


def test_rss_of_a_fresh_process_running_your_config(tmp_path):
    config = write_config(tmp_path, "decision:\n  reclassify_every: 5\n")
    assert 30 < bench.peak_rss_mb(10, COLOR_MODEL, config) < 1000
    with pytest.raises(subprocess.CalledProcessError):  # the child reads the file you gave
        bench.peak_rss_mb(10, COLOR_MODEL, write_config(tmp_path, "camra: {}\n"))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--frames", "0"], "--frames: 0 is not a whole number of 1 or more"),
        (["--frames", "-3"], "--frames: -3 is not a whole number of 1 or more"),
        (["--threads", "0"], "--threads: 0 is not a whole number of 1 or more"),
        (["--threads", "1", "two"], "--threads: 'two' is not a whole number of 1 or more"),
    ],
)
def test_bad_counts_are_usage_errors_naming_the_option(capsys, option, message):
    from edge.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["bench", *option])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("config_text", "extra", "message"),
    [
        ("camra: {}\n", [], "camra: unknown key (did you mean camera?)"),
        (None, [], "cannot read config"),
        ("", ["--classifier", "absent.tflite"], "classifier model absent.tflite not found"),
    ],
)
def test_a_bad_config_or_classifier_is_an_error_before_anything_is_measured(
    tmp_path, capsys, monkeypatch, config_text, extra, message
):
    from edge.cli import main

    config = tmp_path / "mine.yaml"
    if config_text is not None:
        config.write_text(config_text)
    monkeypatch.setattr(bench, "measure", lambda *a, **k: pytest.fail("measured"))
    assert main(["bench", "--config", str(config), "--frames", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_json_is_the_only_thing_on_stdout(tmp_path):
    """The loop logs each decision; with --json those lines go to stderr, so the output parses whole."""
    done = subprocess.run(
        [sys.executable, "-m", "edge", "bench", "--json", "--faces", "1", "--threads", "1", "--frames", "3",
         "--classifier", str(COLOR_MODEL)],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(row["faces"], row["threads"], row["frames"]) for row in report["rows"]] == [(1, 1, 3)]
    assert "edge.classifier" in done.stderr, "the logs are still there, on stderr"
