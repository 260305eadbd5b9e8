"""Face detector evaluation: recall by size and class, precision, and ms per frame, per strategy.

    python -m bench.detector_eval [--data ../shared/data] [--write docs/detector.md] [--quick] [--stream-only]

Runs every strategy in STRATEGIES over the VOC scenes and the close-up frames built by
bench/detector_data.py, matches detections to faces at IoU >= 0.5 (one to one, best overlap first,
as `maskwatch evaluate` does) and prints markdown tables; `--write` puts them between the results
markers of docs/detector.md, whose prose explains them.

The stream evaluation replays every frame as a short clip, `fine_every` frames drifting a few pixels
per frame, through a detector in stream mode: the first frame is searched in full, the others only in
windows around the small faces found before (plus the coarse pass). Its table compares the two.

Precision for a size range is counted the COCO way: a detection matched to a face outside the range,
or unmatched and smaller than the range, is neither right nor wrong there. Otherwise every small
false positive would count against the large faces and every large face found against the small.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bench.detector_data import EvalFrame, closeup_frames, scene_frames
from edge.config import DetectorConfig
from edge.faces import FaceDetector
from edge.scoring import SIZE_BUCKETS, match_boxes, size_bucket

# the face verifier (on by default) is off in the others, so they show BlazeFace's own trade-offs
STRATEGIES = {
    "pyramid (default, face verifier on)": DetectorConfig(),
    "pyramid, no verifier": DetectorConfig(verifier=False),
    "pyramid, fine 256 (the default before 2026-11-24), face verifier on": DetectorConfig(fine_size=256),
    "dual": DetectorConfig(strategy="dual", verifier=False),
    "full_range": DetectorConfig(strategy="full_range", verifier=False),
    "short_range": DetectorConfig(strategy="short_range", verifier=False),
}
# stream settings, timed on clips of `fine_every` frames (photos are searched in full every time)
TIMING_ONLY = {
    "pyramid, stream, fine_every 1 (whole frame every frame)": DetectorConfig(fine_every=1),
    "pyramid, stream, fine_every 3 (default: windows between)": DetectorConfig(fine_every=3),
}
STREAM_DRIFT = (2.0, 1.0)  # px per frame the clip's frame moves right and down
CLOSEUPS = "close-ups"  # their truth boxes are BlazeFace's own (bench/closeup_faces.csv) ...
RANGES = (64, 32, 0)  # lowest face height of each precision/recall range
EDGE_PX = 4  # decision.edge_margin_px: faces this close to the frame edge are ignored by the daemon
MARK_START, MARK_END = "<!-- results:start -->", "<!-- results:end -->"
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass
class Tally:
    """Counts for one strategy on one frame set."""

    found: Counter = field(default_factory=Counter)  # (size bucket, label) -> faces found
    faces: Counter = field(default_factory=Counter)  # (size bucket, label) -> faces
    true_pos: Counter = field(default_factory=Counter)  # range -> matched detections of faces in range
    false_pos: Counter = field(default_factory=Counter)  # range -> unmatched detections at least that tall
    range_found: Counter = field(default_factory=Counter)  # (range, label) -> faces in range found
    range_faces: Counter = field(default_factory=Counter)
    uncut_found: Counter = field(default_factory=Counter)  # label -> faces >= 64 px off the edge found
    uncut_faces: Counter = field(default_factory=Counter)

    def add(self, frame: EvalFrame, boxes: np.ndarray) -> None:
        truth = np.asarray(frame.boxes, np.float64).reshape(-1, 4)
        pairs = dict(match_boxes(truth, boxes, 0.5))
        matched = {d: t for t, d in pairs.items()}
        height, width = frame.image.shape[:2]
        for t, label in enumerate(frame.labels):
            face_h = truth[t, 3] - truth[t, 1]
            found = t in pairs
            self.faces[(size_bucket(face_h), label)] += 1
            self.found[(size_bucket(face_h), label)] += found
            for low in RANGES:
                if face_h >= low:
                    self.range_faces[(low, label)] += 1
                    self.range_found[(low, label)] += found
            x1, y1, x2, y2 = truth[t]
            if face_h >= 64 and min(x1, y1, width - x2, height - y2) >= EDGE_PX:
                self.uncut_faces[label] += 1
                self.uncut_found[label] += found
        for d, box in enumerate(boxes):
            for low in RANGES:
                if d in matched:
                    t = matched[d]
                    self.true_pos[low] += truth[t, 3] - truth[t, 1] >= low
                elif box[3] - box[1] >= low:
                    self.false_pos[low] += 1

    def precision(self, low: int) -> float | None:
        counted = self.true_pos[low] + self.false_pos[low]
        return self.true_pos[low] / counted if counted else None

    def recall(self, low: int, label: str | None = None) -> tuple[int, int]:
        keys = [k for k in self.range_faces if k[0] == low and (label is None or k[1] == label)]
        return sum(self.range_found[k] for k in keys), sum(self.range_faces[k] for k in keys)


def for_frames(config: DetectorConfig, set_name: str) -> DetectorConfig:
    """... so close-ups are scored on BlazeFace's boxes: the box refinement moves boxes to the VOC scenes'
    convention, and neither adds nor removes a face (bench/box_refinement_eval.py shows both)."""
    return dataclasses.replace(config, box_refinement=False) if set_name.startswith(CLOSEUPS) else config


def evaluate(detector: FaceDetector, frames: list[EvalFrame]) -> Tally:
    tally = Tally()
    for frame in frames:
        faces = detector.detect(frame.image, "BGR")
        tally.add(frame, np.array([f.box for f in faces], np.float64).reshape(-1, 4))
    return tally


def drifted(frame: EvalFrame, step: int, drift: tuple[float, float] = STREAM_DRIFT) -> EvalFrame:
    """The frame moved by `step` times `drift` pixels (edges repeated), its boxes moved with it."""
    dx, dy = drift[0] * step, drift[1] * step
    if not step:
        return frame
    height, width = frame.image.shape[:2]
    image = cv2.warpAffine(
        frame.image,
        np.float32([[1, 0, dx], [0, 1, dy]]),
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    boxes = tuple((x1 + dx, y1 + dy, x2 + dx, y2 + dy) for x1, y1, x2, y2 in frame.boxes)
    return dataclasses.replace(frame, image=image, boxes=boxes)


def evaluate_stream(config: DetectorConfig, frames: list[EvalFrame]) -> list[tuple[Tally, Tally]]:
    """Per clip position, a Tally of the stream and one of a whole-frame search of the same frame.

    Every frame is replayed as a clip of `fine_every` drifting frames through a stream-mode detector,
    so position 0 is a whole-frame search and the rest are window searches; the reference searches
    each of those frames in full, as a photo.
    """
    stream, photo = FaceDetector(config, stream=True), FaceDetector(config)
    tallies = [(Tally(), Tally()) for _ in range(config.fine_every)]
    for frame in frames:
        stream.reset()
        for step, (seen, reference) in enumerate(tallies):
            moved = drifted(frame, step)
            for detector, tally in ((stream, seen), (photo, reference)):
                faces = detector.detect(moved.image, "BGR")
                tally.add(moved, np.array([f.box for f in faces], np.float64).reshape(-1, 4))
    return tallies


def stream_table(results: dict[str, list[tuple[Tally, Tally]]]) -> list[str]:
    lines = [
        "| frames | clip frame | fine pass | precision >= 32 px | recall >= 32 px | recall 32-63 px | "
        "recall >= 64 px | same frame searched in full: precision / recall >= 32 px |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for set_name, tallies in results.items():
        for step, (tally, reference) in enumerate(tallies):
            small = [sum(c[k] for k in c if k[0] == "32-63") for c in (tally.found, tally.faces)]
            lines.append(
                f"| {set_name} | {step + 1} | {'whole frame' if step == 0 else 'windows (whole if none found)'} | "
                f"{_ratio(tally.precision(32))} | {_pct(*tally.recall(32))} | {_pct(*small)} | "
                f"{_pct(*tally.recall(64))} | {_ratio(reference.precision(32))} / "
                f"{_pct(*reference.recall(32))} |"
            )
    return lines


def ms_per_frame(detector: FaceDetector, frames: list[EvalFrame], repeats: int = 5) -> dict[str, float]:
    """ms of `detect` on 640x480 frames holding one face, medians over the frames.

    The machine is shared, so other processes inflate single runs. A frame's fastest of `repeats` runs
    ("best") is the closest to what an idle machine would take, "median" is every run's, and "cpu" is
    the process CPU time of the fastest run, which waiting for a core does not inflate (with 2 threads
    it adds both threads' time, so it is given for 1 thread only). A stream-mode detector's run is a
    clip of `fine_every` calls, the first searching the whole frame, averaged.
    """
    group = detector.config.fine_every if detector.stream else 1
    for frame in frames[:5]:
        detector.detect(frame.image)
    best, cpu, every = [], [], []
    for frame in frames:
        runs, cpu_runs = [], []
        for _ in range(repeats):
            detector.reset()
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(group):
                detector.detect(frame.image)
            runs.append((time.perf_counter() - start) * 1000 / group)
            cpu_runs.append((time.process_time() - start_cpu) * 1000 / group)
        best.append(min(runs))
        cpu.append(min(cpu_runs))
        every += runs
    return {"best": float(np.median(best)), "median": float(np.median(every)), "cpu": float(np.median(cpu))}


def _pct(found: int, total: int) -> str:
    return f"{100 * found / total:.1f}% ({found}/{total})" if total else "-"


def _ratio(value: float | None) -> str:
    return f"{100 * value:.1f}%" if value is not None else "-"


def summary_table(results: dict[str, dict[str, Tally]], labels: dict[str, list[str]]) -> list[str]:
    lines = [
        "| strategy | frames | precision >= 64 px | recall >= 64 px | " + "recall >= 64 px by class | "
        "precision >= 32 px | recall >= 32 px | recall >= 64 px, off the edge |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, sets in results.items():
        for set_name, tally in sets.items():
            by_class = ", ".join(
                f"{label} {_pct(*tally.recall(64, label))}"
                for label in labels[set_name]
                if tally.recall(64, label)[1]
            )
            uncut = ", ".join(
                f"{label} {_pct(tally.uncut_found[label], tally.uncut_faces[label])}"
                for label in labels[set_name]
                if tally.uncut_faces[label]
            )
            lines.append(
                f"| {name} | {set_name} | {_ratio(tally.precision(64))} | {_pct(*tally.recall(64))} | {by_class} | "
                f"{_ratio(tally.precision(32))} | {_pct(*tally.recall(32))} | {uncut} |"
            )
    return lines


def size_table(tally: Tally, labels: list[str]) -> list[str]:
    sizes = [name for name, _, _ in SIZE_BUCKETS]
    lines = ["| class | " + " | ".join(sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for label in labels:
        cells = [_pct(tally.found[(s, label)], tally.faces[(s, label)]) for s in sizes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def report(results: dict, timings: dict, labels: dict, data_root: Path, stream: dict | None = None) -> str:
    out = [
        f"Generated by `python -m bench.detector_eval --write docs/detector.md` on {platform.machine()} "
        f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end), data {data_root}. "
        "Close-ups are scored on BlazeFace's own boxes (`box_refinement: false`), the convention of their "
        "truth boxes; the scenes on the default's refined boxes.",
        "",
        "### Precision and recall at IoU 0.5",
        "",
        *summary_table(results, labels),
        "",
        "### Recall by face height (px) and class",
        "",
    ]
    for name, sets in results.items():
        for set_name, tally in sets.items():
            out += [f"**{name}, {set_name}**", "", *size_table(tally, labels[set_name]), ""]
    if stream:
        out += [
            f"### A stream: each frame as a clip of {len(next(iter(stream.values())))} frames drifting "
            f"{STREAM_DRIFT[0]:g}, {STREAM_DRIFT[1]:g} px per frame (default config, stream mode)",
            "",
            *stream_table(stream),
            "",
        ]
    if not timings:
        return "\n".join(out) + "\n"
    out += [
        "### Detector ms per 640x480 frame with one face (`FaceDetector.detect`, 100 close-up frames x 5 runs)",
        "",
        "best: median over frames of each frame's fastest run; median: of all runs; CPU: process CPU time of",
        "the fastest run, which is not inflated by waiting for a core (1 thread only).",
        "",
        "| strategy | 1 thread: CPU | 1 thread: best / median | 2 threads: best / median |",
        "|---|---|---|---|",
    ]
    for name, by_threads in timings.items():
        one, two = by_threads[1], by_threads[2]
        out.append(
            f"| {name} | {one['cpu']:.2f} | {one['best']:.2f} / {one['median']:.2f} | "
            f"{two['best']:.2f} / {two['median']:.2f} |"
        )
    return "\n".join(out) + "\n"


def write_into(doc: Path, text: str, start_mark: str = MARK_START, end_mark: str = MARK_END) -> None:
    """Replace the part of `doc` between the results markers with `text`."""
    content = doc.read_text()
    start, end = content.index(start_mark) + len(start_mark), content.index(end_mark)
    doc.write_text(content[:start] + "\n" + text + content[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.detector_eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--write", type=Path, help="markdown file whose results section to replace")
    parser.add_argument("--quick", action="store_true", help="the default strategy only, no timing")
    parser.add_argument(
        "--stream-only", action="store_true", help="only the stream evaluation of the default config"
    )
    args = parser.parse_args(argv)
    frame_sets = {"scenes": scene_frames(args.data), CLOSEUPS: closeup_frames(args.data)}
    labels = {
        name: sorted({label for f in frames for label in f.labels}) for name, frames in frame_sets.items()
    }
    one_face = [f for f in frame_sets[CLOSEUPS] if len(f.boxes) == 1][:100]
    strategies = dict(list(STRATEGIES.items())[:1]) if args.quick else STRATEGIES
    if args.stream_only:
        strategies = {}
    results, timings = {}, {}
    stream = {
        name: evaluate_stream(for_frames(DetectorConfig(), name), frames)
        for name, frames in frame_sets.items()
    }
    print("stream: done", file=sys.stderr, flush=True)
    for name, config in strategies.items():
        results[name] = {
            set_name: evaluate(FaceDetector(for_frames(config, set_name)), frames)
            for set_name, frames in frame_sets.items()
        }
        if not args.quick:
            timings[name] = {
                threads: ms_per_frame(FaceDetector(dataclasses.replace(config, threads=threads)), one_face)
                for threads in (1, 2)
            }
        print(f"{name}: done", file=sys.stderr, flush=True)
    if not args.quick and not args.stream_only:
        for name, config in TIMING_ONLY.items():
            timings[name] = {
                threads: ms_per_frame(
                    FaceDetector(dataclasses.replace(config, threads=threads), stream=True), one_face
                )
                for threads in (1, 2)
            }
    text = report(results, timings, labels, args.data, stream)
    print(text)
    if args.write:
        write_into(args.write, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
