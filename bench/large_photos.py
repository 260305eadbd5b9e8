"""Faces in large photos: recall and precision with and without the photo tiles (edge/photo_tiles.py).

    python -m bench.large_photos [--data ../shared/data] [--grid 3]

The close-up frames of bench/detector_data.py (faces 32-400 px in 640x480) laid out GRIDxGRID in one
photo, each moved off the tile grid by a border, so the photo holds the same faces at the same pixel
sizes as the camera frames but is 3 times as wide: what a phone photo given to `maskwatch detect`, or a
folder of large photos given to `maskwatch evaluate`, looks like to the detector. Scored like
bench/detector_eval.py (IoU 0.5, one to one, BlazeFace's own boxes as for the close-ups), next to the
camera-sized frames themselves; ms per photo with 2 threads. The seams where two frames meet are
sharp edges no real photo has, and a tile across one sees a pattern the camera frames never show:
false positives that cross a seam are counted apart (the last column) and left out of precision.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np

from bench.detector_data import FRAME_H, FRAME_W, EvalFrame, closeup_frames
from bench.detector_eval import DEFAULT_DATA, Tally, _pct, _ratio, evaluate
from edge.config import DetectorConfig
from edge.faces import FaceDetector
from edge.scoring import match_boxes

BORDER = (130, 100)  # x, y: moves the frames off the tiles' grid of 320 x 240 px steps


def mosaics(frames: list[EvalFrame], grid: int) -> list[EvalFrame]:
    """The frames laid out `grid` x `grid` per photo on a grey border, their boxes moved with them."""
    width, height = grid * FRAME_W + 2 * BORDER[0], grid * FRAME_H + 2 * BORDER[1]
    photos = []
    per_photo = grid * grid
    for start in range(0, len(frames) - per_photo + 1, per_photo):
        photo = np.full((height, width, 3), 110, np.uint8)
        boxes, labels = [], []
        for i, frame in enumerate(frames[start : start + per_photo]):
            x0, y0 = BORDER[0] + (i % grid) * FRAME_W, BORDER[1] + (i // grid) * FRAME_H
            photo[y0 : y0 + FRAME_H, x0 : x0 + FRAME_W] = frame.image
            boxes += [(x1 + x0, y1 + y0, x2 + x0, y2 + y0) for x1, y1, x2, y2 in frame.boxes]
            labels += frame.labels
        photos.append(EvalFrame(f"mosaic{start}", photo, tuple(boxes), tuple(labels)))
    return photos


def crosses_seam(box: np.ndarray, grid: int) -> bool:
    """Whether a box (photo pixels) reaches across a seam between two of the mosaic's frames."""
    x1, y1, x2, y2 = box
    xs = [BORDER[0] + k * FRAME_W for k in range(1, grid)]
    ys = [BORDER[1] + k * FRAME_H for k in range(1, grid)]
    return any(x1 < x - 2 and x2 > x + 2 for x in xs) or any(y1 < y - 2 and y2 > y + 2 for y in ys)


def evaluate_photos(detector: FaceDetector, photos: list[EvalFrame], grid: int) -> tuple[Tally, int, float]:
    """The tally without the false positives across a seam, their number, and ms per photo."""
    tally, on_seams, seconds = Tally(), 0, 0.0
    for photo in photos:
        start = time.perf_counter()
        faces = detector.detect(photo.image, "BGR")
        seconds += time.perf_counter() - start
        boxes = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
        matched = {d for _, d in match_boxes(np.asarray(photo.boxes, np.float64).reshape(-1, 4), boxes)}
        seam = np.array([d not in matched and crosses_seam(b, grid) for d, b in enumerate(boxes)], bool)
        on_seams += int(seam.sum())
        tally.add(photo, boxes[~seam])
    return tally, on_seams, seconds * 1000 / len(photos)


def row(name: str, tally: Tally, on_seams: int | None = None, ms: float | None = None) -> str:
    cells = [name]
    for low in (64, 32):
        found, total = tally.recall(low)
        cells += [_pct(found, total), _ratio(tally.precision(low))]
    cells.append("-" if ms is None else f"{ms:.0f}")
    cells.append("-" if on_seams is None else str(on_seams))
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.large_photos", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--grid", type=int, default=3, help="close-up frames per side of a photo")
    args = parser.parse_args(argv)
    frames = closeup_frames(args.data)
    photos = mosaics(frames, args.grid)
    config = DetectorConfig(box_refinement=False)  # the close-ups' truth boxes are BlazeFace's own
    print(
        f"{len(photos)} photos of {photos[0].image.shape[1]}x{photos[0].image.shape[0]} "
        f"({sum(len(p.boxes) for p in photos)} faces); {len(frames)} camera frames; {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores\n"
    )
    print(
        "| frames | recall >= 64 px | precision >= 64 px | recall >= 32 px | precision >= 32 px "
        "| ms per frame | false positives across a seam |"
    )
    print("|---|---|---|---|---|---|---|")
    used = frames[: len(photos) * args.grid**2]
    print(row("the camera frames, 640x480", evaluate(FaceDetector(config), used)), flush=True)
    for name, tiles in (("photos, tiles (default)", True), ("photos, no tiles", False)):
        detector = FaceDetector(dataclasses.replace(config, photo_tiles=tiles))
        print(row(name, *evaluate_photos(detector, photos, args.grid)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
