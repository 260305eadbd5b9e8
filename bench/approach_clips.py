"""Faces walking in: growing clips through the stream detector, against every frame searched in full.

    python -m bench.approach_clips [--clips N] [--frames F] [--seed S] [--data ../shared/data]
                                   [--second P] [--show K] [--trace CLIP]

People walk towards an entrance camera, so one face grows from a few pixels to filling the frame. The
drifting 3-frame clips of bench/detector_eval.py show that a face stays found from frame to frame; these
clips show whether it stays found while it grows through the stream detector's handover from the fine
pass's windows to the coarse pass (faces of about 100-200 px in a 640x480 frame), and how many frames
after a person appears their face is first found.

Each clip (seeded, rebuilt on every run, never written anywhere) is one faces2 crop of
bench/closeup_faces.csv, with its checked face box, pasted into one of bench/detector_data.py's 640x480
backgrounds, its face growing from about 30 to about 400 px tall over F frames at a walker's steady pace
(the height's inverse moves linearly, as edge.synth.scene.approach has it: slow growth far away, fast
near the camera), drifting a little sideways and down. A share of the clips (`--second`) has a second
person, another crop, who walks in later on the other side and stays farther away; where the nearer
person's pasted crop covers part of their face box, that face is hidden on that frame: neither found nor
missed, and a detection on it is no false positive.

Every clip runs through a stream-mode FaceDetector of the default config (`stream=True`, as the daemon
builds it, reset between clips) and, frame by frame, through a photo-mode one (every frame searched in
full). Both run with `box_refinement` off: the crops' face boxes are BlazeFace's own (the convention
bench/detector_eval.py scores its close-ups in). Detections are matched one to one at IoU >= 0.5
(edge.scoring.match_boxes). The report gives recall by face height band and by class, false positives
per frame, the frame of first detection after a person appears (median and worst), the longest run of
consecutive missed frames once a face was found, per band, and the frames the stream missed where the
photo search found the face, by what the stream detector ran on them; `--trace CLIP` prints one clip
frame by frame for a reproduction.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.detector_data import FRAME_H, FRAME_W, CloseupFace, backgrounds, closeup_list
from edge.config import Config, load_config, replace
from edge.datasets import load_image_bgr
from edge.faces import FaceDetector
from edge.scoring import match_boxes
from edge.synth.scene import SampleFace, approach, place_face

Box = tuple[float, float, float, float]
BANDS = (("30-63", 0, 64), ("64-127", 64, 128), ("128-255", 128, 256), ("256+", 256, None))
LABELS = ("with_mask", "without_mask", "mask_weared_incorrect")  # the csv's classes
START_PX, END_PX = (30.0, 34.0), (380.0, 420.0)  # face height on the first and the last frame
IOU = 0.5
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def band(height: float) -> str:
    """The height band of a face box height in px."""
    for name, low, high in BANDS:
        if height >= low and (high is None or height < high):
            return name
    raise ValueError(f"face height must be >= 0, got {height}")


# --- clips -----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Walker:
    """One person in a clip: a crop with its face box, in view from `first_frame` on along `path`."""

    sample: SampleFace  # the crop, pasted opaque (hard edges, as in bench/detector_data.py); its face box
    label: str
    first_frame: int
    path: tuple[tuple[float, tuple[float, float]], ...]  # (face height px, face centre) per frame in view

    def at(self, index: int) -> tuple[float, tuple[float, float]] | None:
        step = index - self.first_frame
        return self.path[step] if 0 <= step < len(self.path) else None


@dataclass(frozen=True, eq=False)
class Clip:
    name: str
    background: np.ndarray  # BGR 640x480
    walkers: tuple[Walker, ...]
    frames: int
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class ClipFrame:
    image: np.ndarray
    boxes: tuple[Box | None, ...]  # each walker's face box, None where it is not in view or hidden
    hidden: tuple[Box, ...]  # faces behind a nearer person: neither found nor missed


def crop_sample(name: str, crop: np.ndarray, face_box: Sequence[float]) -> SampleFace:
    """A crop (BGR) with its face box, to paste opaque: its rectangle replaces the background."""
    alpha = np.ones(crop.shape[:2], np.float32)
    return SampleFace(name=name, image=crop, alpha=alpha, box=tuple(float(v) for v in face_box), keypoints=())


def walk(
    frames: int, start_px: float, end_px: float, start: tuple[float, float], end: tuple[float, float]
) -> tuple[tuple[float, tuple[float, float]], ...]:
    """(face height, centre) per frame of a steady walk towards the camera (edge.synth.scene.approach)."""
    return tuple(approach(frames, start_px, end_px, start, end))


def paste(frame: np.ndarray, sample: SampleFace, face_px: float, centre: tuple[float, float]):
    """Paste `sample` (in place) with its face `face_px` tall at `centre`; (face box, crop rectangle) in
    frame pixels, the face box clipped to the crop and the frame as bench/detector_data.py clips it."""
    placed = place_face(frame, sample, face_px, centre)
    fx1, fy1, fx2, fy2 = placed.box
    bx1, by1, bx2, by2 = sample.box
    scale = (fy2 - fy1) / (by2 - by1)
    ox, oy = fx1 - scale * bx1, fy1 - scale * by1
    crop_h, crop_w = sample.image.shape[:2]
    rect = (ox, oy, ox + scale * crop_w, oy + scale * crop_h)
    height, width = frame.shape[:2]
    box = (
        max(fx1, rect[0], 0.0),
        max(fy1, rect[1], 0.0),
        min(fx2, rect[2], float(width)),
        min(fy2, rect[3], float(height)),
    )
    return box, rect


def _overlaps(box: Box, rect: Box) -> bool:
    return box[0] < rect[2] and rect[0] < box[2] and box[1] < rect[3] and rect[1] < box[3]


def render(clip: Clip, index: int) -> ClipFrame:
    """Frame `index` of `clip`: the farther people first; a face that a nearer crop covers is hidden."""
    image = clip.background.copy()
    placed: dict[int, tuple[Box, Box]] = {}
    present = [(w.at(index), i) for i, w in enumerate(clip.walkers)]
    for where, i in sorted(((w, i) for w, i in present if w is not None), key=lambda wi: wi[0][0]):
        placed[i] = paste(image, clip.walkers[i].sample, *where)
    boxes: list[Box | None] = []
    hidden = []
    for i in range(len(clip.walkers)):
        if i not in placed:
            boxes.append(None)
            continue
        box = placed[i][0]
        nearer = [rect for j, (b, rect) in placed.items() if j != i and b[3] - b[1] > box[3] - box[1]]
        if any(_overlaps(box, rect) for rect in nearer) or box[2] - box[0] < 2 or box[3] - box[1] < 2:
            hidden.append(box)
            boxes.append(None)
        else:
            boxes.append(box)
    return ClipFrame(image, tuple(boxes), tuple(hidden))


def clip_frames(clip: Clip) -> Iterator[ClipFrame]:
    for index in range(clip.frames):
        yield render(clip, index)


def _walker(
    rng: random.Random,
    face: CloseupFace,
    crop: np.ndarray,
    frames: int,
    first: int,
    end_px: float,
    side: float,
) -> Walker:
    """A walker entering at `first`, its face centre on the `side` (0..1 of the frame width) and moving a
    little sideways and down while it grows from about 30 px to `end_px`."""
    length = frames - first
    end_half_w = end_px * 0.45  # about half a face's width, so the last frame's face stays in the frame
    end_x = min(max(side * FRAME_W + rng.uniform(-40, 40), end_half_w + 8), FRAME_W - end_half_w - 8)
    start_x = min(max(end_x + rng.uniform(-80, 80), 40), FRAME_W - 40)
    start_y = FRAME_H * rng.uniform(0.36, 0.46)
    end_y = min(FRAME_H * rng.uniform(0.48, 0.52), FRAME_H - end_px / 2 - 6)
    path = walk(length, rng.uniform(*START_PX), end_px, (start_x, start_y), (end_x, end_y))
    return Walker(crop_sample(face.path, crop, face.box), face.label, first, path)


def build_clips(
    data_root: Path,
    count: int,
    frames: int = 45,
    seed: int = 0,
    second: float = 0.3,
    faces: list[CloseupFace] | None = None,
) -> list[Clip]:
    """`count` seeded clips of `frames` frames, classes taken in turn, each crop once while they last.

    A `second` share of them has a second person entering between a quarter and half of the way in,
    on the other side, growing to 80-160 px only.
    """
    faces = closeup_list() if faces is None else faces
    rng = random.Random(seed)
    by_label = {label: [f for f in faces if f.label == label] for label in LABELS}
    for pool in by_label.values():
        rng.shuffle(pool)
    labels = [label for label in LABELS if by_label[label]]
    canvases = backgrounds(data_root, count, rng)
    crops: dict[str, np.ndarray] = {}

    def crop_of(face: CloseupFace) -> np.ndarray:
        if face.path not in crops:
            crops[face.path] = load_image_bgr(Path(data_root) / face.path)
        return crops[face.path]

    clips = []
    for index in range(count):
        label = labels[index % len(labels)]
        pool = by_label[label]
        face = pool[(index // len(labels)) % len(pool)]
        side = rng.uniform(0.3, 0.7)
        walkers = [_walker(rng, face, crop_of(face), frames, 0, rng.uniform(*END_PX), side)]
        if rng.random() < second:
            other_pool = by_label[labels[(index + 1) % len(labels)]]
            other = other_pool[(index // len(labels) + 7) % len(other_pool)]
            first = rng.randint(frames // 4, frames // 2)
            other_side = 0.18 if side > 0.5 else 0.82
            walkers.append(
                _walker(rng, other, crop_of(other), frames, first, rng.uniform(80, 160), other_side)
            )
        clips.append(
            Clip(
                name=f"clip_{index:03d}",
                background=canvases[index],
                walkers=tuple(walkers),
                frames=frames,
                sources=tuple(w.sample.name for w in walkers),
            )
        )
    return clips


# --- scoring ---------------------------------------------------------------------------------------


def score_frame(frame: ClipFrame, detections: np.ndarray, iou: float = IOU) -> tuple[list[bool | None], int]:
    """Per walker: found (a detection matched one to one at `iou`), missed, or None (not in view or
    hidden); and the false positives: detections matched to no face in view nor to a hidden one."""
    detections = np.asarray(detections, np.float64).reshape(-1, 4)
    in_view = [i for i, b in enumerate(frame.boxes) if b is not None]
    truth = np.array([frame.boxes[i] for i in in_view] + list(frame.hidden), np.float64).reshape(-1, 4)
    pairs = dict(match_boxes(truth, detections, iou))
    found: list[bool | None] = [None] * len(frame.boxes)
    for t, i in enumerate(in_view):
        found[i] = t in pairs
    return found, len(detections) - len(pairs)


@dataclass
class Person:
    """One walker's record through one clip in one mode: per frame in view, face height and found."""

    clip: str
    source: str
    label: str
    role: str  # "walker" (enters an empty scene) or "newcomer" (enters while somebody is in view)
    first_frame: int
    heights: list[float | None] = field(default_factory=list)  # None: hidden
    found: list[bool | None] = field(default_factory=list)

    def first_found(self) -> int | None:
        """Frames after appearing until the face is first found (0: on its first frame)."""
        return next((i for i, f in enumerate(self.found) if f), None)

    def miss_runs(self) -> list[tuple[int, int]]:
        """(frame in view where a run of misses starts, length) after the first detection; hidden frames
        neither extend nor end a run."""
        first = self.first_found()
        if first is None:
            return []
        runs, start, length = [], None, 0
        for i in range(first + 1, len(self.found)):
            if self.found[i] is None:
                continue
            if self.found[i]:
                if length:
                    runs.append((start, length))
                start, length = None, 0
            else:
                start = i if start is None else start
                length += 1
        if length:
            runs.append((start, length))
        return runs


@dataclass(frozen=True)
class StreamMiss:
    """A frame the stream detector missed a face on while the photo search of the same frame found it."""

    clip: str
    source: str
    label: str
    frame: int
    height: float
    kind: str  # what the stream detector ran: whole / windows / windows+coarse
    followed: bool  # whether a window followed this face


@dataclass
class ModeResult:
    people: list[Person] = field(default_factory=list)
    frames: int = 0
    false_pos: int = 0
    seconds: float = 0.0


def stream_plan(detector: FaceDetector) -> tuple[str, np.ndarray]:
    """What a stream-mode detector will run on its next frame of the same size, and the boxes it follows.

    Diagnostics only: reads the detector's private state as edge/faces.py's `_whole_frame_due` and
    `_candidates_by_pass` use it (whole frame when nothing was seen or every `fine_every`th frame; the
    coarse pass on window frames only while a face is left to it).
    """
    since = detector._since_whole
    followed = np.array([box for box, _ in detector._followed], np.float64).reshape(-1, 4)
    if detector._shape is None or since is None or since + 1 >= detector.config.fine_every:
        return "whole", followed
    return ("windows+coarse" if detector._every_frame_passes_due else "windows"), followed


def detector_config(config: Config | None = None) -> Config:
    """The default config with BlazeFace's own boxes, the convention of the crops' face boxes."""
    return replace(config or load_config(None), detector={"box_refinement": False})


def evaluate(
    clips: Sequence[Clip], detectors: dict[str, FaceDetector], trace: str | None = None
) -> tuple[dict[str, ModeResult], list[StreamMiss]]:
    """Every clip through each detector (stream-mode ones reset before each clip), frame by frame, scored;
    and, when there are a "stream" and a "photo" one, the frames the stream missed a face the photo
    search found, with what the stream detector ran on them. `trace` names a clip to print frame by frame.
    """
    results = {mode: ModeResult() for mode in detectors}
    misses: list[StreamMiss] = []
    compare = "stream" in detectors and "photo" in detectors
    for clip in clips:
        for detector in detectors.values():
            if detector.stream:
                detector.reset()
        records = {
            mode: [
                Person(
                    clip.name,
                    w.sample.name,
                    w.label,
                    "newcomer" if w.first_frame else "walker",
                    w.first_frame,
                )
                for w in clip.walkers
            ]
            for mode in results
        }
        for index, frame in enumerate(clip_frames(clip)):
            kind, followed = stream_plan(detectors["stream"]) if "stream" in detectors else ("", None)
            found = {}
            for mode, detector in detectors.items():
                start = time.perf_counter()
                faces = detector.detect(frame.image, "BGR")
                results[mode].seconds += time.perf_counter() - start
                boxes = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
                found[mode], false_pos = score_frame(frame, boxes)
                results[mode].frames += 1
                results[mode].false_pos += false_pos
                if trace == clip.name:
                    detail = ", ".join(
                        f"({f.box[0]:.0f},{f.box[1]:.0f},{f.box[2]:.0f},{f.box[3]:.0f}) {f.score:.2f}"
                        for f in faces
                    )
                    print(
                        f"{clip.name} {index:2d} {mode:6s} {kind if mode == 'stream' else '':14s} "
                        f"truth {_boxes_text(frame.boxes)} found {found[mode]} fp {false_pos} | {detail}"
                    )
            for w, walker in enumerate(clip.walkers):
                if walker.at(index) is None:
                    continue
                box = frame.boxes[w]
                height = None if box is None else box[3] - box[1]
                for mode in results:
                    records[mode][w].heights.append(height)
                    records[mode][w].found.append(found[mode][w])
                if compare and found["photo"][w] and not found["stream"][w]:
                    misses.append(
                        StreamMiss(
                            clip.name,
                            walker.sample.name,
                            walker.label,
                            index,
                            height,
                            kind,
                            _follows(followed, box),
                        )
                    )
        for mode in results:
            results[mode].people += records[mode]
    return results, misses


def _follows(followed: np.ndarray, box: Box) -> bool:
    """Whether a followed box (a window's centre) lies on the face `box`: its centre inside the box. (Not
    by IoU: a growing face has outgrown the box it was followed by.)"""
    cx, cy = (followed[:, 0] + followed[:, 2]) / 2, (followed[:, 1] + followed[:, 3]) / 2
    return bool(((box[0] <= cx) & (cx <= box[2]) & (box[1] <= cy) & (cy <= box[3])).any())


def _boxes_text(boxes) -> str:
    return " ".join(
        "-" if b is None else f"({b[0]:.0f},{b[1]:.0f},{b[2]:.0f},{b[3]:.0f})h{b[3] - b[1]:.0f}"
        for b in boxes
    )


# --- tables ----------------------------------------------------------------------------------------


def _pct(found: int, total: int) -> str:
    return f"{100 * found / total:.1f}% ({found}/{total})" if total else "-"


def recall(people: Sequence[Person], label: str | None = None) -> dict[str, tuple[int, int]]:
    """Band -> (frames found, frames in view) over the people (of `label`)."""
    counts: dict[str, list[int]] = {name: [0, 0] for name, _, _ in BANDS}
    for person in people:
        if label is not None and person.label != label:
            continue
        for height, found in zip(person.heights, person.found, strict=True):
            if found is None:
                continue
            counts[band(height)][0] += found
            counts[band(height)][1] += 1
    return {name: (c[0], c[1]) for name, c in counts.items()}


def longest_runs(people: Sequence[Person]) -> dict[str, tuple[int, int]]:
    """Band -> (longest run of consecutive misses once found, runs of 2 frames or more), the run counted
    in the band of its first missed frame."""
    longest: Counter = Counter()
    long_runs: Counter = Counter()
    for person in people:
        for start, length in person.miss_runs():
            name = band(person.heights[start])
            longest[name] = max(longest[name], length)
            long_runs[name] += length >= 2
    return {name: (longest[name], long_runs[name]) for name, _, _ in BANDS}


def first_found(people: Sequence[Person]) -> str:
    """Median and worst frames until first found, and the face height then; never-found people."""
    firsts = [(p.first_found(), p) for p in people]
    seen = [(i, p.heights[i]) for i, p in firsts if i is not None]
    never = len(firsts) - len(seen)
    if not seen:
        return f"never found: {never}/{len(firsts)}"
    frames = [i for i, _ in seen]
    heights = [h for _, h in seen]
    return (
        f"frame {np.median(frames):g} / {max(frames)} (face {np.median(heights):.0f} / {max(heights):.0f} px)"
        + (f", never found {never}/{len(firsts)}" if never else "")
    )


def later_first(stream: Sequence[Person], photo: Sequence[Person]) -> str:
    """How many people the stream found first on a later frame than the photo search (same clips, same
    order), by how many frames at most; and how many it never found while the photo search did."""
    delays, never = [], 0
    for s, p in zip(stream, photo, strict=True):
        first_s, first_p = s.first_found(), p.first_found()
        if first_p is None:
            continue
        if first_s is None:
            never += 1
        elif first_s > first_p:
            delays.append(first_s - first_p)
    worst = f", by up to {max(delays)} frames (median {np.median(delays):g})" if delays else ""
    return (
        f"First found later by the stream than with every frame searched in full: {len(delays)} of "
        f"{len(stream)} people{worst}; never found by the stream only: {never}."
    )


def report(stream: ModeResult, photo: ModeResult, misses: list[StreamMiss], show: int = 12) -> str:
    names = [name for name, _, _ in BANDS]
    out = [
        "| face height | frames | stream: recall | photo: recall | stream missed, photo found | "
        "longest miss run once found: stream / photo | runs >= 2 frames: stream / photo |",
        "|---|---|---|---|---|---|---|",
    ]
    s_recall, p_recall = recall(stream.people), recall(photo.people)
    s_runs, p_runs = longest_runs(stream.people), longest_runs(photo.people)
    by_band = Counter(band(m.height) for m in misses)
    for name in names:
        out.append(
            f"| {name} px | {s_recall[name][1]} | {_pct(*s_recall[name])} | {_pct(*p_recall[name])} | "
            f"{by_band[name]} | {s_runs[name][0]} / {p_runs[name][0]} | {s_runs[name][1]} / {p_runs[name][1]} |"
        )
    total_s = [sum(v[k] for v in s_recall.values()) for k in (0, 1)]
    total_p = [sum(v[k] for v in p_recall.values()) for k in (0, 1)]
    out.append(f"| all | {total_s[1]} | {_pct(*total_s)} | {_pct(*total_p)} | {len(misses)} | | |")
    out += [
        "",
        "| class | mode | " + " | ".join(f"{n} px" for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for label in LABELS:
        for mode, result in (("stream", stream), ("photo", photo)):
            cells = recall(result.people, label)
            if not any(c[1] for c in cells.values()):
                continue
            out.append(f"| {label} | {mode} | " + " | ".join(_pct(*cells[n]) for n in names) + " |")
    out += [
        "",
        "| mode | false positives per frame | first found, walker into an empty scene: median / worst "
        "(face height then) | first found, newcomer while somebody is in view | ms per frame |",
        "|---|---|---|---|---|",
    ]
    for mode, result in (("stream", stream), ("photo", photo)):
        walkers = [p for p in result.people if p.role == "walker"]
        newcomers = [p for p in result.people if p.role == "newcomer"]
        out.append(
            f"| {mode} | {result.false_pos / max(result.frames, 1):.3f} ({result.false_pos}/{result.frames}) | "
            f"{first_found(walkers)} (of {len(walkers)}) | "
            f"{first_found(newcomers) + f' (of {len(newcomers)})' if newcomers else '-'} | "
            f"{1000 * result.seconds / max(result.frames, 1):.1f} |"
        )
    out += ["", later_first(stream.people, photo.people)]
    if misses:
        kinds = sorted({(m.kind, m.followed) for m in misses})
        out += [
            "",
            "Frames the stream missed where the photo search found the face, by what the stream ran on them "
            "(whole: both passes over the whole frame; windows: the fine pass in windows only, the coarse "
            "pass skipped; windows+coarse: both) and whether a window followed that face:",
            "",
            "| face height | "
            + " | ".join(f"{k}{', followed' if f else ', not followed'}" for k, f in kinds)
            + " |",
            "|---|" + "---|" * len(kinds),
        ]
        table = Counter((band(m.height), m.kind, m.followed) for m in misses)
        for name in names:
            out.append(f"| {name} px | " + " | ".join(str(table[(name, k, f)]) for k, f in kinds) + " |")
        out += ["", f"First {min(show, len(misses))} of them (clip, frame, face height, source):", ""]
        for m in misses[:show]:
            out.append(
                f"- {m.clip} frame {m.frame}: {m.height:.0f} px, {m.kind}"
                f"{', followed' if m.followed else ''}, {m.label} {m.source}"
            )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.approach_clips", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--clips", type=int, default=150, help="how many clips (default 150)")
    parser.add_argument("--frames", type=int, default=45, help="frames per clip (default 45: 3 s at 15 fps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--second", type=float, default=0.3, help="share of clips with a second person")
    parser.add_argument("--show", type=int, default=12, help="stream-only misses to list")
    parser.add_argument(
        "--trace",
        help="print this clip (e.g. clip_007) frame by frame; clip names hold for the same --clips, --frames, "
        "--seed and --second",
    )
    args = parser.parse_args(argv)
    if args.clips < 1 or args.frames < 2:
        parser.error("--clips must be >= 1 and --frames >= 2")
    started = time.perf_counter()
    clips = build_clips(args.data, args.clips, args.frames, args.seed, args.second)
    if args.trace:
        clips = [c for c in clips if c.name == args.trace]
        if not clips:
            parser.error(f"no clip {args.trace} among {args.clips}")
    config = detector_config()
    stream = FaceDetector.from_config(config, stream=True)
    photo = FaceDetector.from_config(config)
    results, misses = evaluate(clips, {"stream": stream, "photo": photo}, args.trace)
    print(
        f"{len(clips)} clips of {args.frames} frames (seed {args.seed}, {sum(len(c.walkers) > 1 for c in clips)} "
        f"with a second person), data {args.data}, default config with box_refinement off, "
        f"{platform.machine()} ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end), "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    print(report(results["stream"], results["photo"], misses, args.show))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
