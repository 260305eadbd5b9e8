"""What the status page costs the alarm path: loop fps with the page off, on with no viewer, and watched.

    python bench/status_overhead.py [--frames 300] [--repeats 3] [--viewers 1] [--preview-fps 5] [--json]

The real loop (edge.loop.run_loop) runs uncapped (no frame pacer, so the alarm path is CPU-bound: the
worst case for any overhead) on pre-rendered `--demo` frames that contain a person, with real BlazeFace
and a real TFLite classifier (the shipped model, or the tests' colour model where none is shipped yet),
a null alarm, and the observers `build_observers` makes for `status.port`. A viewer is a separate `curl`
process reading /stream.mjpg, as a phone would. Configurations are interleaved and repeated, and the
median is reported, so a busy machine skews them alike ("paired" is the median of each repeat's ratio to
the "off" run next to it). CPU ms/frame is the whole process's CPU time (loop, encoder and HTTP threads)
per frame: steadier than fps on a shared machine. The issue's target: watched >= 90% of off.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.camera import FrameListSource  # noqa: E402
from edge.classifier import MaskClassifier  # noqa: E402
from edge.config import Config, replace  # noqa: E402
from edge.decision import Decider  # noqa: E402
from edge.faces import FaceDetector  # noqa: E402
from edge.loop import run_loop  # noqa: E402
from edge.observers import build_observers  # noqa: E402
from edge.paths import classifier_model_path  # noqa: E402

COLOR_MODEL = REPO / "tests" / "data" / "color_classifier.tflite"


class NullAlarm:
    def alert(self, label: str) -> None: ...

    def fault(self) -> None: ...

    def clear_fault(self) -> None: ...

    def show_ok(self, on: bool) -> None: ...


def scene_frames(n: int) -> list:
    """`n` demo frames in which a person is in view, rendered up front."""
    from edge.synth.demo import demo_frames

    demo = demo_frames()
    indices = [i for s in demo.segments if s.label for i in range(s.start, s.stop)]
    return [demo[indices[i % len(indices)]] for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_viewers(port: int, count: int) -> list[subprocess.Popen]:
    curl = shutil.which("curl")
    if curl is None:
        raise SystemExit("curl is needed to play the viewer")
    viewers = [
        subprocess.Popen([curl, "-s", "-N", "-o", os.devnull, f"http://127.0.0.1:{port}/stream.mjpg"])
        for _ in range(count)
    ]
    return viewers


def measure(name: str, frames: list, detector, classifier, args) -> dict:
    observers, viewers = [], []
    port = free_port()
    if name != "page off":
        config = replace(Config(), status={"port": port, "preview_fps": args.preview_fps})
        observers = build_observers(config, tempfile.mkdtemp(prefix="maskwatch-bench-"))
    preview = next((o.inner for o in observers if type(o.inner).__name__ == "PreviewStream"), None)
    if name == "page on, watched":
        viewers = start_viewers(port, args.viewers)
        deadline = time.monotonic() + 5
        while preview.viewers < args.viewers and time.monotonic() < deadline:
            time.sleep(0.02)
    try:
        # Warm up (interpreters, caches, the first JPEG) outside the timed part.
        run_loop(
            FrameListSource(frames[:20]),
            detector,
            classifier,
            Decider(Config().decision),
            NullAlarm(),
            observers=observers,
            max_frames=20,
        )
        encoded_before = preview.frames_encoded if preview else 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        summary = run_loop(
            FrameListSource(frames, loop=True),
            detector,
            classifier,
            Decider(Config().decision),
            NullAlarm(),
            observers=observers,
            max_frames=args.frames,
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        for v in viewers:
            v.terminate()
            v.wait(5)
        for o in observers:
            o.close()
    encoded = (preview.frames_encoded - encoded_before) if preview else 0
    return {
        "fps": summary.frames / wall,
        "cpu_ms_per_frame": 1e3 * cpu / summary.frames,
        "jpeg_per_s": encoded / wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--viewers", type=int, default=1)
    parser.add_argument("--preview-fps", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2, help="TFLite threads for detector and classifier")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    model = classifier_model_path() if classifier_model_path().exists() else COLOR_MODEL
    detector = FaceDetector(replace(Config(), detector={"threads": args.threads}).detector)
    classifier = MaskClassifier(model, threads=args.threads)
    frames = scene_frames(min(args.frames, 120))
    names = ["page off", "page on, no viewer", "page on, watched"]
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for _ in range(args.repeats):
        for name in names:
            runs[name].append(measure(name, frames, detector, classifier, args))

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    base = med("page off", "fps")
    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}",
        "load_average": os.getloadavg(),
        "classifier": str(model.relative_to(REPO) if model.is_relative_to(REPO) else model),
        "threads": args.threads,
        "frames_per_run": args.frames,
        "repeats": args.repeats,
        "preview_fps_cap": args.preview_fps,
        "viewers": args.viewers,
        "results": {
            n: {
                "fps": round(med(n, "fps"), 1),
                "fps_vs_off": round(med(n, "fps") / base, 3),
                # each repeat's ratio to the "off" run just before it: less exposed to a busy machine
                "paired_vs_off": round(
                    statistics.median(
                        r["fps"] / off["fps"] for r, off in zip(runs[n], runs["page off"], strict=True)
                    ),
                    3,
                ),
                "cpu_ms_per_frame": round(med(n, "cpu_ms_per_frame"), 2),
                "jpeg_per_s": round(med(n, "jpeg_per_s"), 1),
                "fps_each_run": [round(r["fps"], 1) for r in runs[n]],
            }
            for n in names
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{report['machine']}; load {report['load_average'][0]:.1f}; classifier {report['classifier']}; "
        f"{args.threads} threads; {args.frames} frames x {args.repeats}; preview cap {args.preview_fps} fps"
    )
    print(
        f"{'configuration':<22} {'fps':>7} {'vs off':>7} {'paired':>7} {'CPU ms/frame':>13} {'JPEG/s':>7}  runs"
    )
    for n, r in report["results"].items():
        print(
            f"{n:<22} {r['fps']:>7.1f} {r['fps_vs_off']:>7.1%} {r['paired_vs_off']:>7.1%} {r['cpu_ms_per_frame']:>13.2f} "
            f"{r['jpeg_per_s']:>7.1f}  {r['fps_each_run']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
