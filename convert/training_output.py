"""What conversion needs from a training run folder: the crop spec, the labels and the split lists.

`python -m train` writes `model.keras`, `training_summary.json` (preprocess spec, labels, data summary)
and the face lists of its split next to each other. Conversion reads them from there instead of
repeating options by hand, so the int8 model cannot be calibrated or checked on crops made differently
from the ones it was trained on. Split lists are read generously (a JSON list of face records, a
{"train": [...], "val": [...]} object, JSON lines or CSV), because only paths, labels and boxes matter.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from edge.datasets import FaceSample, canonical_label
from edge.model_metadata import LABELS
from edge.paths import REPO_ROOT
from edge.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

SUMMARY_NAME = "training_summary.json"
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
_VAL_KEYS = ("val", "validation", "valid")
_TRAIN_KEYS = ("train", "training")
_SAVED_SIDE = {"representative": "train", "validation": "val"}


class TrainingOutputError(ValueError):
    """The training folder lacks something conversion needs; the message names the file."""


@dataclass
class TrainingOutput:
    keras_model: Path
    folder: Path
    spec: PreprocessSpec
    labels: list[str]
    summary: dict = field(default_factory=dict)
    data_root: Path = DEFAULT_DATA_ROOT
    train_samples: list[FaceSample] | None = None
    val_samples: list[FaceSample] | None = None
    explicit_splits: frozenset[str] = frozenset()  # "train"/"val": lists named on the command line

    def saved_crops(self, name: str) -> Path | None:
        """`representative.npz` or `validation.npz` of the run, when it saved them and no split list for
        that side was named explicitly (a list asked for by name wins over the run's own crops)."""
        if _SAVED_SIDE[name] in self.explicit_splits:
            return None
        path = self.folder / f"{name}.npz"
        return path if path.is_file() else None


def _spec_from_summary(summary: dict, source: Path) -> PreprocessSpec:
    data = summary.get("preprocess") or summary.get("spec") or summary.get("preprocess_spec")
    if not isinstance(data, dict):
        raise TrainingOutputError(
            f"{source}: no `preprocess` spec; conversion must crop the way training did"
        )
    try:
        return PreprocessSpec.from_dict(data)
    except ValueError as exc:
        raise TrainingOutputError(f"{source}: {exc}") from exc


def _box(record: dict) -> tuple[float, float, float, float] | None:
    box = record.get("box")
    if isinstance(box, str):
        box = [float(v) for v in box.replace(",", " ").split()] or None
    if box is None and all(record.get(k) not in (None, "") for k in ("x1", "y1", "x2", "y2")):
        box = [record[k] for k in ("x1", "y1", "x2", "y2")]
    return tuple(float(v) for v in box) if box else None  # type: ignore[return-value]


def records_to_samples(records: list[dict], data_root: Path) -> list[FaceSample]:
    """Face records (image path relative to `data_root` or absolute, label, optional box) as samples.

    Records whose pixels only exist after training's own augmentation (a mask drawn by the synthesizer:
    `placement` set) are skipped: they are not real face crops, and remaking them would tie conversion
    to train/.
    """
    samples, synthesized = [], 0
    for record in records:
        if record.get("placement"):
            synthesized += 1
            continue
        image = record.get("image") or record.get("path")
        label = canonical_label(str(record.get("label", "")))
        if not image or label is None:
            raise TrainingOutputError(f"split record {record!r} needs an image path and a known label")
        path = Path(image)
        samples.append(FaceSample(path if path.is_absolute() else data_root / path, label, _box(record)))
    if synthesized:
        log.info("skipped %d synthesized faces of the split (real crops only)", synthesized)
    return samples


def _read_records(path: Path) -> list[dict] | dict:
    text = path.read_text()
    if path.suffix == ".csv":
        return list(csv.DictReader(text.splitlines()))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def read_split_file(path: Path, data_root: Path, part: str | None = None) -> list[FaceSample]:
    """Samples of one split file; `part` ("train"/"val") picks a key of a combined {"train", "val"} file."""
    data = _read_records(Path(path))
    if isinstance(data, dict):
        keys = _VAL_KEYS if part == "val" else _TRAIN_KEYS if part == "train" else ("records", "faces")
        found = next((data[k] for k in keys if isinstance(data.get(k), list)), None)
        if found is None:
            raise TrainingOutputError(f"{path}: no list under any of {', '.join(keys)}")
        data = found
    return records_to_samples(data, data_root)


def _find_split_files(folder: Path) -> dict[str, Path]:
    """{"train": path, "val": path} for split lists in the training folder, found by name."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".json", ".jsonl", ".csv") or path.name == SUMMARY_NAME:
            continue
        stem = path.stem.lower()
        if "split" not in stem and not any(k in stem for k in (*_VAL_KEYS, *_TRAIN_KEYS)):
            continue
        if any(k in stem for k in _VAL_KEYS):
            found.setdefault("val", path)
        elif any(k in stem for k in _TRAIN_KEYS):
            found.setdefault("train", path)
        elif "split" in stem:
            found.setdefault("both", path)
    return found


def read_training_output(
    keras_model: Path,
    data_root: Path | None = None,
    train_split: Path | None = None,
    val_split: Path | None = None,
) -> TrainingOutput:
    """Spec, labels and split samples for `keras_model`, from the training folder it sits in.

    Relative paths in split lists are under `data_root`, by default the run's own `data_root`.
    """
    keras_model = Path(keras_model)
    if not keras_model.is_file():
        raise TrainingOutputError(f"Keras model {keras_model} not found")
    folder = keras_model.parent
    summary_path = folder / SUMMARY_NAME
    if not summary_path.is_file():
        raise TrainingOutputError(
            f"{summary_path} is missing: conversion takes the crop spec and labels from the training run"
        )
    summary = json.loads(summary_path.read_text())
    if data_root is None:
        data_root = Path(summary.get("data_root") or DEFAULT_DATA_ROOT)
    labels = list(summary.get("labels") or LABELS)
    found = _find_split_files(folder)
    if "both" in found:
        found.setdefault("train", found["both"])
        found.setdefault("val", found["both"])
    train_path, val_path = train_split or found.get("train"), val_split or found.get("val")
    return TrainingOutput(
        keras_model=keras_model,
        folder=folder,
        spec=_spec_from_summary(summary, summary_path),
        labels=labels,
        summary=summary,
        data_root=data_root,
        train_samples=read_split_file(train_path, data_root, "train") if train_path else None,
        val_samples=read_split_file(val_path, data_root, "val") if val_path else None,
        explicit_splits=frozenset(
            side for side, given in (("train", train_split), ("val", val_split)) if given is not None
        ),
    )
