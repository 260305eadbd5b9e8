"""The alarm's numbers on a source held out of training, for one or more runs side by side.

`python -m train --hold-out-source SOURCE` scores the held-out faces with the float model as trained;
the shipped model carries a logit offset on top (convert/logit_offsets.py), and single short runs of
one recipe differ by as much as two recipes do, so recipes are compared over several seeds. This prints
what the model card's held-out tables quote, per run, with the offsets the shipped model uses:

    python -m train.held_out_report runs/A_seed0 runs/A_seed1 ... --logit-offset mask_weared_incorrect=-1

`--crop-margin 0.5` scores the same faces cropped from their boxes with another margin than the contract's,
through the run's Keras model: datasets cropped by others frame faces more loosely or tightly than our
detector's crop does. `--box-cut` scores each face cut out at its box and stretched square, which is how
`maskwatch evaluate` sees a crop dataset made from annotation boxes (the held-out scenes' own crops).

Faces are the held-out source's real ones (masks drawn on them were dropped from the run). The run
saves their records (`held_out/records.json`); for runs made before it did, they are rebuilt from the
data the way the run built them, and the count is checked against the saved probabilities.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.logit_offsets import LogitOffsetError, parse_offsets
from edge.datasets import load_image_bgr
from edge.model_metadata import LABELS
from edge.preprocess import PreprocessSpec, crop_face, crop_whole_image
from train.data import FaceRecord
from train.keypoints import DEFAULT_CACHE
from train.run import RunOptions, build_records
from train.splits import hold_out

WITH, WITHOUT, INCORRECT = (
    LABELS.index(name) for name in ("with_mask", "without_mask", "mask_weared_incorrect")
)
MIN_FACE_PX = 32  # the daemon's default minimum face height (decision.min_face_px)


@dataclass(frozen=True)
class HeldOutFaces:
    labels: np.ndarray  # LABELS index per face
    face_px: np.ndarray  # box height (scenes) or image height (class folders)


def load_held_out_faces(run: Path, data_root: Path, keypoints: Path = DEFAULT_CACHE) -> HeldOutFaces:
    """The held-out faces of `run`, in the order of its `held_out/probabilities.npy`."""
    saved = run / "held_out" / "records.json"
    if saved.exists():
        rows = json.loads(saved.read_text())
        return HeldOutFaces(
            np.array([LABELS.index(r["label"]) for r in rows]), np.array([r["face_px"] for r in rows])
        )
    held = _rebuilt_held_out_records(run, data_root, keypoints)
    return HeldOutFaces(np.array([r.label_index for r in held]), np.array([r.face_px for r in held]))


def load_held_out_records(run: Path, data_root: Path, keypoints: Path = DEFAULT_CACHE) -> list[FaceRecord]:
    """The held-out faces of `run` with where their pixels are, in the order of its probabilities."""
    saved = run / "held_out" / "records.json"
    if saved.exists():
        rows = json.loads(saved.read_text())
        fields = FaceRecord.__dataclass_fields__
        return [FaceRecord.from_dict({k: v for k, v in row.items() if k in fields}) for row in rows]
    return _rebuilt_held_out_records(run, data_root, keypoints)


def _rebuilt_held_out_records(run: Path, data_root: Path, keypoints: Path) -> list[FaceRecord]:
    summary = json.loads((run / "training_summary.json").read_text())
    sources = tuple(summary["held_out"]["sources"])
    if not sources:
        raise ValueError(f"{run}: trained with no source held out (python -m train --hold-out-source)")
    options = RunOptions(
        data_root=data_root,
        out_dir=run,
        weights_path=None,
        keypoints_path=keypoints,
        draw_masks=False,  # drawn faces of a held-out source are dropped anyway
        published_labels="--published-labels" in summary.get("command", ""),
    )
    records, _ = build_records(options)
    _, held = hold_out(records, sources)
    if len(held) != summary["held_out"]["faces"]:
        raise ValueError(
            f"{run}: rebuilt {len(held)} held-out faces, the run scored {summary['held_out']['faces']}: "
            "the data or train/faces2_relabels.csv changed since; re-run the training"
        )
    return held


def box_cut(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The pixels inside `box` (rounded, kept inside the image, never empty): a crop dataset's image."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1 = min(max(x1, 0), width - 1), min(max(y1, 0), height - 1)
    x2, y2 = min(max(x2, x1 + 1), width), min(max(y2, y1 + 1), height)
    return np.ascontiguousarray(image[y1:y2, x1:x2])


def probabilities_recropped(
    run: Path, records: list[FaceRecord], data_root: Path, margin: float | None
) -> np.ndarray:
    """The run's Keras model on `records` cropped with `margin` instead of the contract's, or with None
    cut at the box and used whole (whole-image faces are used whole, as always)."""
    import keras

    summary = json.loads((run / "training_summary.json").read_text())
    spec = PreprocessSpec.from_dict({**summary["preprocess"], "crop_margin": margin or 0.0})
    crops, image_path, image = [], None, None
    for record in records:
        if record.image != image_path:
            image_path, image = record.image, load_image_bgr(data_root / record.image)
        if record.box is None:
            crops.append(crop_whole_image(image, spec, frame_order="BGR"))
        elif margin is None:
            crops.append(crop_whole_image(box_cut(image, record.box), spec, frame_order="BGR"))
        else:
            crops.append(crop_face(image, record.box, spec, frame_order="BGR"))
    model = keras.models.load_model(run / "model.keras", compile=False)
    return model.predict(np.stack(crops).astype(np.float32), batch_size=128, verbose=0)


def with_offsets(probabilities: np.ndarray, offsets: dict[str, float]) -> np.ndarray:
    """Top-1 after adding each label's offset to its logit (softmax is shift-invariant per row)."""
    logits = np.log(np.clip(probabilities.astype(np.float64), 1e-12, None))
    for label, value in offsets.items():
        logits[:, LABELS.index(label)] += value
    return logits.argmax(axis=1)


def _ratio(hits: int, total: int) -> float | None:
    return hits / total if total else None


def alarm_numbers(faces: HeldOutFaces, predicted: np.ndarray) -> dict:
    """Worn-wrong precision/recall, violator recall, masked faces flagged, masked vs unmasked accuracy."""
    y, px = faces.labels, faces.face_px
    out: dict = {}
    for name, keep in (("ge32", px >= MIN_FACE_PX), ("all", np.ones_like(px, bool))):
        truth, guess = y[keep], predicted[keep]
        called, actual = guess == INCORRECT, truth == INCORRECT
        violators, masked = truth != WITH, truth == WITH
        two = truth != INCORRECT
        out[name] = {
            "n": int(keep.sum()),
            "incorrect_n": int(actual.sum()),
            "incorrect_precision": _ratio(int((called & actual).sum()), int(called.sum())),
            "incorrect_recall": _ratio(int((called & actual).sum()), int(actual.sum())),
            "violator_recall": _ratio(int((guess[violators] != WITH).sum()), int(violators.sum())),
            "masked_flagged": _ratio(int((guess[masked] != WITH).sum()), int(masked.sum())),
            "with_vs_without": _ratio(
                int(((guess[two] == WITH) == (truth[two] == WITH)).sum()), int(two.sum())
            ),
        }
    return out


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return (
        f"{100 * value:.1f} %"
        if percent
        else f"{value:.2f}"
        if value < 0.995 or value == 1
        else f"{value:.3f}"
    )


def text_row(name: str, numbers: dict) -> str:
    g, a = numbers["ge32"], numbers["all"]
    return (
        f"{name}: worn-wrong >= {MIN_FACE_PX} px ({g['incorrect_n']}) P {_fmt(g['incorrect_precision'])} "
        f"R {_fmt(g['incorrect_recall'])}; all sizes ({a['incorrect_n']}) P {_fmt(a['incorrect_precision'])} "
        f"R {_fmt(a['incorrect_recall'])} | violator recall >= {MIN_FACE_PX} px {g['violator_recall']:.3f} | "
        f"masked flagged >= {MIN_FACE_PX} px {_fmt(g['masked_flagged'], percent=True)} | with vs without "
        f">= {MIN_FACE_PX} px / all {g['with_vs_without']:.3f} / {a['with_vs_without']:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.held_out_report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run folders trained with --hold-out-source")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="shared data folder")
    parser.add_argument(
        "--keypoints", type=Path, default=DEFAULT_CACHE, help="keypoint cache (older runs only)"
    )
    parser.add_argument(
        "--logit-offset", action="append", default=[], metavar="LABEL=VALUE", help="as python -m convert's"
    )
    parser.add_argument(
        "--crop-margin",
        type=float,
        default=None,
        help="crop the faces in boxes with this margin (the contract's is 0.2) and score them with the run's "
        "Keras model, instead of the probabilities saved at the contract's crop",
    )
    parser.add_argument(
        "--box-cut",
        action="store_true",
        help="cut each face at its box and score the cut whole, stretched square, as `maskwatch evaluate` "
        "scores a crop dataset made from annotation boxes",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    args = parser.parse_args(argv)
    try:
        offsets = parse_offsets(args.logit_offset, LABELS)
    except LogitOffsetError as err:
        parser.error(str(err))
    if args.crop_margin is not None and not 0.0 <= args.crop_margin <= 2.0:
        parser.error(f"--crop-margin must be in [0, 2], got {args.crop_margin}")
    if args.box_cut and args.crop_margin is not None:
        parser.error("--box-cut and --crop-margin are two ways to crop: give one")
    crop = "box cut" if args.box_cut else None if args.crop_margin is None else f"margin {args.crop_margin:g}"
    for run in args.runs:
        probabilities_path = run / "held_out" / "probabilities.npy"
        if not probabilities_path.exists():
            print(f"{run}: no {probabilities_path.name} (trained with --hold-out-source?)", file=sys.stderr)
            return 2
        probabilities = np.load(probabilities_path)
        faces = load_held_out_faces(run, args.data, args.keypoints)
        if crop is not None:
            records = load_held_out_records(run, args.data, args.keypoints)
            probabilities = probabilities_recropped(run, records, args.data, args.crop_margin)
        if len(faces.labels) != len(probabilities):
            print(f"{run}: {len(faces.labels)} faces but {len(probabilities)} probabilities", file=sys.stderr)
            return 2
        numbers = alarm_numbers(faces, with_offsets(probabilities, offsets))
        if args.json:
            print(
                json.dumps({"run": str(run), "logit_offsets": offsets, "crop": crop or "contract", **numbers})
            )
        else:
            print(text_row(run.name + ("" if crop is None else f" ({crop})"), numbers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
