"""The face verifier's effect on the detector: recall and precision before and after, and its cost.

    python -m bench.verifier_eval [--data ../shared/data] [--model F] [--refinement F] [--half eval|train]
                                  [--floor 0.3 ...] [--no-timing] [--write docs/detector.md]

Same frames and scoring as bench/detector_eval.py (close-ups, scenes; IoU 0.5, COCO-style precision by
size), but the scenes are reported on the half the verifier never saw ("scenes, eval half") as well as
all of them ("scenes, all: half of these trained the verifier"). `--model`, `--refinement` and `--half
train` score a verifier and box refinement made from the other half (`python -m train.verifier --scenes
eval`, `python -m train.box_refinement --scenes eval`) on the "train" half instead: the second fold of
a cross-fit. The close-ups' faces and background
regions were kept out of its training (train/verifier_data.py). Cost: how many candidates per frame
the verifier checks, and the process CPU time of `FaceDetector.detect` with and without it (1 thread,
100 close-up frames with one face, 5 runs each, fastest run per frame, median over frames).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bench.detector_data import closeup_frames, scene_frames, split_scenes
from bench.detector_eval import (
    CLOSEUPS,
    DEFAULT_DATA,
    Tally,
    for_frames,
    size_table,
    summary_table,
    write_into,
)
from edge.box_refine import BoxRefinement
from edge.config import DetectorConfig
from edge.faces import FaceDetector
from edge.verifier import FaceVerifier, verifier_model_path

MARK_START, MARK_END = "<!-- verifier-results:start -->", "<!-- verifier-results:end -->"


class CountingVerifier:
    """A FaceVerifier that counts the candidates it is asked about and the ones it keeps, and the sure
    faces it is asked to veto and the ones it vetoes."""

    def __init__(self, verifier: FaceVerifier):
        self.verifier, self.asked, self.kept = verifier, 0, 0
        self.veto_asked, self.vetoed = 0, 0

    def is_surely_not_face(self, frame, boxes, frame_order="BGR"):
        vetoed = self.verifier.is_surely_not_face(frame, boxes, frame_order)
        self.veto_asked += len(vetoed)
        self.vetoed += int(vetoed.sum())
        return vetoed

    def is_face(self, frame, boxes, frame_order="BGR"):
        keep = self.verifier.is_face(frame, boxes, frame_order)
        self.asked += len(keep)
        self.kept += int(keep.sum())
        return keep


def detector_with(config: DetectorConfig, model: Path | None, refinement: Path | None = None) -> FaceDetector:
    """The detector of `config`, with the verifier `model` and box refinement `refinement` if given."""
    detector = FaceDetector(config)
    if config.verifier and model is not None:
        detector.verifier = FaceVerifier(model)
    if config.box_refinement and refinement is not None:
        detector.refinement = BoxRefinement.load(refinement)
    return detector


def evaluate(detector: FaceDetector, frames) -> tuple[Tally, dict]:
    tally = Tally()
    if detector.verifier is not None:
        detector.verifier = CountingVerifier(detector.verifier)
    for frame in frames:
        faces = detector.detect(frame.image, "BGR")
        tally.add(frame, np.array([f.box for f in faces], np.float64).reshape(-1, 4))
    counts = {}
    if isinstance(detector.verifier, CountingVerifier):
        counts = {
            "asked": detector.verifier.asked / len(frames),
            "kept": detector.verifier.kept / len(frames),
            "veto asked": detector.verifier.veto_asked / len(frames),
            "vetoed": detector.verifier.vetoed / len(frames),
        }
        detector.verifier = detector.verifier.verifier
    return tally, counts


def cpu_ms(detector: FaceDetector, frames, repeats: int = 5) -> float:
    for frame in frames[:5]:
        detector.detect(frame.image)
    best = []
    for frame in frames:
        runs = []
        for _ in range(repeats):
            start = time.process_time()
            detector.detect(frame.image)
            runs.append((time.process_time() - start) * 1000)
        best.append(min(runs))
    return float(np.median(best))


def ms_per_candidate(model: Path, frames, repeats: int = 5) -> float:
    """CPU ms of one verifier check (crop and int8 inference, 1 thread), fastest of `repeats`, median."""
    verifier = FaceVerifier(model, threads=1)
    times = []
    for frame in frames:
        for box in frame.boxes:
            runs = []
            for _ in range(repeats):
                start = time.process_time()
                verifier.face_scores(frame.image, [box])
                runs.append((time.process_time() - start) * 1000)
            times.append(min(runs))
    return float(np.median(times))


def report(results, counts, timings, labels, model: Path) -> str:
    out = [
        f"Generated by `python -m bench.verifier_eval --write docs/detector.md` on {platform.machine()} "
        f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end), verifier {model.name}. "
        "Box refinement on (the default), except on the close-ups, whose truth is BlazeFace's own boxes.",
        "",
        *summary_table(results, labels),
        "",
        "Candidates the verifier checked and kept, and sure faces it checked and vetoed"
        " (`verifier_veto_below`), per frame:",
        "",
        "| setting | frames | checked | kept | sure faces checked | vetoed |",
        "|---|---|---|---|---|---|",
    ]
    for name, sets in counts.items():
        for set_name, c in sets.items() if isinstance(sets, dict) else ():
            if c:
                out.append(
                    f"| {name} | {set_name} | {c['asked']:.2f} | {c['kept']:.2f} | "
                    f"{c['veto asked']:.2f} | {c['vetoed']:.2f} |"
                )
    out += ["", "**Recall by face height (px) and class**", ""]
    for name, sets in results.items():
        for set_name, tally in sets.items():
            if set_name != "scenes, all (half trained the verifier)":
                out += [f"*{name}, {set_name}*", "", *size_table(tally, labels[set_name]), ""]
    out += [
        "Detector CPU ms per 640x480 frame with one face (1 thread, fastest of 5 runs, median of 100 frames):",
        "",
        "| setting | CPU ms |",
        "|---|---|",
        *[f"| {name} | {ms:.2f} |" for name, ms in timings.items()],
    ]
    if "per candidate" in counts:
        out += [
            "",
            f"One verifier check (crop and inference, 1 thread): {counts['per candidate']:.3f} ms CPU.",
        ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.verifier_eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument(
        "--model", type=Path, default=None, help="verifier .tflite (default: the shipped one)"
    )
    parser.add_argument(
        "--refinement", type=Path, default=None, help="box refinement .json (default: the shipped one)"
    )
    parser.add_argument(
        "--half", choices=("eval", "train"), default="eval", help="the scene half to report as unseen"
    )
    parser.add_argument("--floor", type=float, nargs="+", default=[0.3], help="verifier_floor values to run")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--write", type=Path, help="markdown file whose verifier results section to replace")
    args = parser.parse_args(argv)
    model = args.model or verifier_model_path()
    scenes = scene_frames(args.data)
    half = split_scenes([f.name for f in scenes])
    frame_sets = {
        CLOSEUPS: closeup_frames(args.data),
        f"scenes, {args.half} half": [f for f in scenes if half[f.name] == args.half],
        "scenes, all (half trained the verifier)": scenes,
    }
    labels = {name: sorted({lab for f in frames for lab in f.labels}) for name, frames in frame_sets.items()}
    base = DetectorConfig(verifier=False)
    settings = {"pyramid, no verifier": base}
    veto = DetectorConfig().verifier_veto_below
    for floor in args.floor:
        with_verifier = dataclasses.replace(base, verifier=True, verifier_floor=floor)
        settings[f"pyramid + verifier, floor {floor:g}, no veto"] = dataclasses.replace(
            with_verifier, verifier_veto_below=0.0
        )
        settings[f"pyramid + verifier, floor {floor:g}, veto below {veto:g}"] = with_verifier
    results, counts, timings = {}, {}, {}
    one_face = [f for f in frame_sets[CLOSEUPS] if len(f.boxes) == 1][:100]
    for name, config in settings.items():
        results[name], counts[name] = {}, {}
        for set_name, frames in frame_sets.items():
            detector = detector_with(for_frames(config, set_name), model, args.refinement)
            results[name][set_name], counts[name][set_name] = evaluate(detector, frames)
        if not args.no_timing:
            timings[name] = cpu_ms(
                detector_with(dataclasses.replace(config, threads=1), model, args.refinement), one_face
            )
        print(f"{name}: done", file=sys.stderr, flush=True)
    if not args.no_timing:
        counts["per candidate"] = ms_per_candidate(model, one_face)
    text = report(results, counts, timings, labels, model)
    print(text)
    if args.write:
        write_into(args.write, text, MARK_START, MARK_END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
