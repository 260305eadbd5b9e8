"""The training reports again, for the shipped int8 model: `python -m train.int8_report RUN_DIR`.

The targets are stated for the int8 model, so the float numbers of a run are not enough. This runs the
converted .tflite through the edge's own MaskClassifier (TFLite runtime, uint8 in and out) over the
run's saved validation crops and writes the same slices as train/report.py (by class, face size,
real faces, two classes) to RUN_DIR/int8/, plus its top-1 agreement with the float model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge.classifier import MaskClassifier
from edge.paths import classifier_model_path
from train.data import FaceRecord
from train.report import headline, plot_confusion, slice_reports, text_report


def validation_records(run_dir: Path) -> list[FaceRecord]:
    """The run's validation records in validation.npz order (split_val.json is written in that order)."""
    rows = json.loads((run_dir / "split_val.json").read_text())
    return [
        FaceRecord.from_dict({**{k: v for k, v in row.items() if k != "subtype"}, "extra": {}})
        for row in rows
    ]


def offset_top1(probabilities: np.ndarray, offsets: dict[str, float], labels: list[str]) -> np.ndarray:
    """The float model's top-1 with the conversion's logit offsets (convert/logit_offsets.py) added,
    so that agreement compares the int8 model with the float model it was made from."""
    shift = np.array([offsets.get(label, 0.0) for label in labels])
    return (np.log(np.clip(probabilities, 1e-12, None)) + shift).argmax(axis=1)


def int8_reports(run_dir: Path, model: Path, threads: int = 2) -> dict:
    saved = np.load(run_dir / "validation.npz")
    records = validation_records(run_dir)
    if [r.key for r in records] != saved["keys"].tolist():
        raise ValueError(f"{run_dir}: split_val.json and validation.npz list different faces")
    classifier = MaskClassifier(model, threads=threads)
    probabilities = classifier.classify_crops(saved["crops"])
    offsets = classifier.metadata.training.get("conversion", {}).get("logit_offsets") or {}
    float_top1 = offset_top1(np.load(run_dir / "validation_probabilities.npy"), offsets, classifier.labels)
    int8_top1 = probabilities.argmax(axis=1)
    big = saved["face_px"] >= 32
    reports = slice_reports(records, int8_top1)
    agreement = {
        "all": float(np.mean(float_top1 == int8_top1)),
        "ge32": float(np.mean(float_top1[big] == int8_top1[big])),
        "n": int(len(int8_top1)),
        "n_ge32": int(big.sum()),
    }
    return {"model": str(model), "agreement_with_float": agreement, "headline": headline(reports), **reports}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.int8_report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a `python -m train` output folder")
    parser.add_argument(
        "--model", type=Path, default=classifier_model_path(), help="the int8 .tflite (with its sidecar)"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    result = int8_reports(args.run_dir, args.model, args.threads)
    out = args.run_dir / "int8"
    out.mkdir(exist_ok=True)
    (out / "int8_metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "int8_classification_report.txt").write_text(text_report(result))
    plot_confusion(
        result["real_ge32"], out / "int8_confusion_real_ge32.png", "int8, validation real faces >= 32 px"
    )
    print(
        json.dumps({"agreement_with_float": result["agreement_with_float"], **result["headline"]}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
