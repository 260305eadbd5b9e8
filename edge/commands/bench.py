"""`maskwatch bench`: per-stage latency and fps of the real loop on this device, printed as a table.

It runs `edge.loop.run_loop` itself (frames in memory, mock GPIO), so the figures are the daemon's:
640x480 frames with 1 and 6 faces of the demo's person, detector and classifier at 1 and 2 threads.
`--rss` adds the peak RSS of a fresh process over 1000 frames and `--first-result` the time from starting
`maskwatch run` to its first result (READY=1 on a notify socket, the way systemd sees it). Both run with
`--config` when given; `--first-result` changes only the source (one bench image), the state directory,
and turns off the status page and MQTT, which would clash with a daemon already running.

The same frame over and over is a scene whose people have settled: the detector follows their faces
between whole-frame searches and the decider re-classifies each person on every third frame only. That
is the "steady" case. `--worst-case` adds rows where every frame costs what a frame of newcomers does:
the whole frame searched and every face classified, every time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from edge.config import Config, load_config
from edge.config import replace as replace_config

STAGES = ("capture", "detect", "classify", "decide", "total")
FACE_LAYOUT_6 = [  # face height, centre: six people at the distances an entrance camera sees
    (110, (110, 150)),
    (90, (320, 130)),
    (120, (530, 160)),
    (70, (130, 360)),
    (60, (330, 350)),
    (80, (520, 370)),
]


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="per-stage latency and fps of the loop on this device")
    add_arguments(parser)
    parser.set_defaults(handler=handle)


def _count(text: str) -> int:
    """An argparse type: a whole number of 1 or more (a run of 0 frames has no figures to show)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a whole number of 1 or more")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frames", type=_count, default=300, help="frames per configuration (after 20 warm-up)"
    )
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 6], choices=[0, 1, 6])
    parser.add_argument("--threads", type=_count, nargs="+", default=[1, 2])
    parser.add_argument("--classifier", type=Path, help="classifier .tflite (default: the shipped model)")
    parser.add_argument(
        "--config",
        type=Path,
        help="take detector and decision settings from this config (threads come from --threads); "
        "--rss and --first-result run it too",
    )
    parser.add_argument("--rss", action="store_true", help="peak RSS of a fresh process over 1000 frames")
    parser.add_argument(
        "--first-result", action="store_true", help="time from `maskwatch run` to its first result"
    )
    parser.add_argument(
        "--worst-case",
        action="store_true",
        help="also measure frames where everybody has just come in (whole-frame search, every face classified)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    parser.add_argument("--child-rss", type=int, help=argparse.SUPPRESS)  # internal: the --rss subprocess


@dataclass
class Row:
    faces: int
    threads: int
    frames: int
    fps: float
    ms: dict[str, float]  # mean per stage
    p95_total: float
    cpu_ms: float  # process CPU time (all threads) per frame: robust when other programs share the CPU
    case: str = "steady"  # "steady": the people in view have settled; "worst": every frame as if all new


def handle(args: argparse.Namespace) -> int:
    if args.child_rss:
        print(json.dumps(_child_rss(args.child_rss, args.classifier, load_config(args.config))))
        return 0
    try:  # a bad config or model is named here, not as a traceback from the middle of a measurement
        config = load_config(args.config)
        build_pipeline(1, args.classifier, config)
    except (ValueError, OSError, ImportError, RuntimeError) as exc:  # config, missing or broken model files
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cases = {"steady": config}
    if args.worst_case:
        cases["worst"] = worst_case(config)
    rows = [
        dataclasses.replace(measure(n, t, args.frames, args.classifier, config=c), case=case)
        for case, c in cases.items()
        for n in args.faces
        for t in args.threads
    ]
    extra = {}
    if args.rss:
        extra["peak_rss_mb_1000_frames"] = peak_rss_mb(1000, args.classifier, args.config)
    if args.first_result:
        extra["start_to_first_result_s"] = start_to_first_result_s(args.classifier, args.config)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": [asdict(r) for r in rows], **extra}))
    else:
        print(table(rows, extra))
    return 0


def worst_case(config: Config) -> Config:
    """`config` with every frame searched in full and every face classified: a frame of newcomers."""
    return replace_config(config, detector={"fine_every": 1}, decision={"reclassify_every": 1})


def bench_frame(faces: int):
    """A 640x480 BGR frame with 0, 1 or 6 unmasked faces of the demo's person."""
    from edge.synth.scene import astronaut, entrance_background, place_face

    frame = entrance_background()
    person = astronaut()
    layout = FACE_LAYOUT_6[:faces] if faces != 1 else [(120, (320, 200))]
    for i, (height, centre) in enumerate(layout):
        place_face(frame, person.mirrored() if i % 2 else person, height, centre)
    return frame


def build_pipeline(threads: int, classifier_path: Path | None, config: Config | None = None):
    """The daemon's detector, classifier and decider for `config` (defaults when None) at `threads`."""
    from edge.classifier import MaskClassifier
    from edge.decision import Decider
    from edge.faces import FaceDetector

    config = config or Config()
    detector = FaceDetector.from_config(
        dataclasses.replace(config, detector=dataclasses.replace(config.detector, threads=threads)),
        stream=True,
    )
    classifier = MaskClassifier(classifier_path, threads=threads)
    # The bench replays one picture; on a slow device a long run would outlast decision.still_face_s and
    # its faces would be set aside as pictures, unclassified, while what is measured is people in view.
    return detector, classifier, Decider(dataclasses.replace(config.decision, still_face_s=0.0))


class _Recorder:
    def __init__(self):
        self.stage_ms: list[dict[str, float]] = []
        self.faces: list[int] = []

    def on_frame(self, result) -> None:
        self.stage_ms.append(result.stage_ms)
        self.faces.append(len(result.faces))

    def on_event(self, event) -> None:
        pass

    def on_camera(self, connected: bool) -> None:
        pass

    def close(self) -> None:
        pass


class _NoAlarm:
    def alert(self, label: str) -> None:
        pass

    def fault(self) -> None:
        pass

    def clear_fault(self) -> None:
        pass

    def show_ok(self, on: bool) -> None:
        pass


def run_frames(detector, classifier, decider, frame, frames: int) -> _Recorder:
    """The real loop over `frames` copies of one frame, recording each FrameResult's stage times."""
    from edge.camera import FrameListSource
    from edge.loop import run_loop

    recorder = _Recorder()
    source = FrameListSource([frame], name="bench", loop=True)
    source.open()
    run_loop(source, detector, classifier, decider, _NoAlarm(), observers=[recorder], max_frames=frames)
    return recorder


def measure(
    faces: int,
    threads: int,
    frames: int,
    classifier_path: Path | None = None,
    warmup: int = 20,
    config: Config | None = None,
) -> Row:
    detector, classifier, decider = build_pipeline(threads, classifier_path, config)
    frame = bench_frame(faces)
    run_frames(detector, classifier, decider, frame, warmup)
    t0, cpu0 = time.perf_counter(), time.process_time()
    recorder = run_frames(detector, classifier, decider, frame, frames)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    found = statistics.median(recorder.faces) if recorder.faces else 0
    if found != faces:
        print(f"note: {faces}-face frame: the detector found {found}", file=sys.stderr)
    ms = {s: statistics.fmean(r.get(s, 0.0) for r in recorder.stage_ms) for s in STAGES}
    totals = sorted(r["total"] for r in recorder.stage_ms)
    return Row(
        faces,
        threads,
        frames,
        frames / elapsed,
        ms,
        totals[int(0.95 * (len(totals) - 1))],
        cpu / frames * 1e3,
    )


def _child_rss(frames: int, classifier_path: Path | None, config: Config | None = None) -> dict:
    detector, classifier, decider = build_pipeline(2, classifier_path, config)
    run_frames(detector, classifier, decider, bench_frame(6), frames)
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def peak_rss_mb(frames: int, classifier_path: Path | None, config_path: Path | None = None) -> float:
    """Peak RSS of a fresh process running the loop (6 faces, 2 threads) over `frames` frames."""
    command = [sys.executable, "-m", "edge", "bench", "--child-rss", str(frames)]
    if classifier_path:
        command += ["--classifier", str(classifier_path)]
    if config_path:
        command += ["--config", str(config_path)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mb"]


def first_result_config(
    config_path: Path | None, classifier_path: Path | None, image: Path, state_dir: Path
) -> dict:
    """The user's config file (or the defaults) as YAML data, changed only where the measurement needs it:
    the bench image as a looping source, a private state directory, no status page and no MQTT (a daemon
    already running holds the port and the node's topics), and `--classifier` when given."""
    load_config(config_path)  # a bad file is reported here, naming the key, not as a child that never starts
    data = (yaml.safe_load(Path(config_path).read_text()) if config_path else None) or {}
    overrides = {
        "camera": {"source": str(image), "loop": True},
        "events": {"state_dir": str(state_dir)},
        "status": {"port": 0},
        "mqtt": {"host": ""},
        **({"classifier": {"model": str(classifier_path)}} if classifier_path else {}),
    }
    for section, values in overrides.items():
        data[section] = {**(data.get(section) or {}), **values}
    return data


def start_to_first_result_s(
    classifier_path: Path | None, config_path: Path | None = None, timeout_s: float = 30.0
) -> float:
    """Seconds from spawning `maskwatch run` on one image until it sends READY=1 (after its first frame)."""
    import cv2

    with tempfile.TemporaryDirectory(prefix="maskwatch-bench-") as tmp:
        image = Path(tmp) / "frame.png"
        cv2.imwrite(str(image), bench_frame(1))
        config = Path(tmp) / "config.yaml"
        data = first_result_config(config_path, classifier_path, image, Path(tmp))
        config.write_text(yaml.safe_dump(data, sort_keys=False))
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(Path(tmp) / "notify"))
        notify.settimeout(timeout_s)
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(Path(tmp) / "notify"),
            "GPIOZERO_PIN_FACTORY": "mock",
            "MASKWATCH_STATE_DIR": tmp,
        }
        t0 = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while b"READY=1" not in notify.recv(4096):
                pass
            return time.perf_counter() - t0
        finally:
            child.terminate()
            child.wait(10)
            notify.close()


def machine() -> dict:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import cv2
    import numpy

    try:
        from importlib.metadata import version

        runtime = f"ai-edge-litert {version('ai-edge-litert')}"
    except Exception:
        runtime = "tflite-runtime"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "runtime": runtime,
    }


def table(rows: list[Row], extra: dict) -> str:
    m = machine()
    lines = [
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, numpy {m['numpy']}, OpenCV {m['opencv']}, "
        f"{m['runtime']}",
        "",
        "case   faces threads   fps | capture  detect classify  decide   total     p95 | cpu (ms/frame)",
    ]
    for r in rows:
        stages = " ".join(f"{r.ms[s]:7.2f}" for s in STAGES)
        lines.append(
            f"{r.case:6s} {r.faces:5d} {r.threads:7d} {r.fps:5.0f} | {stages} {r.p95_total:7.2f} | {r.cpu_ms:5.2f}"
        )
    for key, value in extra.items():
        lines.append(f"{key.replace('_', ' ')}: {value:.2f}")
    return "\n".join(lines)
