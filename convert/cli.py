"""`python -m convert`: trained Keras model -> int8 TFLite + metadata sidecar + parity report.

Steps, in order: read the training run (spec, labels, saved crops or split lists), correct the conv
biases for int8 weight rounding (convert/bias_correction.py), calibrate on real training-split crops,
convert, check the I/O quantization, write the sidecar, run the int8 model through the edge's own
MaskClassifier (so the sidecar round trip is tested on every conversion) against the float model on the
validation split, and only then install the pair and its report into --out, each file renamed into
place whole. A model below the agreement floor is not installed; its parity report is written beside
the installed model as mask_classifier_parity.rejected.json, so the failure can be read and the
installed model keeps its own report."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convert.bias_correction import correct_biases
from convert.crop_sets import CropSet, CropSetError, from_samples, load_npz
from convert.logit_offsets import LogitOffsetError, apply_logit_offsets, parse_offsets
from convert.parity import float_probabilities, parity_report
from convert.quantize import QuantizationError, check_io_quantization, to_int8_tflite
from convert.samples import hash_split, samples_from_data, stratified_indices, stratified_pick
from convert.training_output import TrainingOutput, TrainingOutputError, read_training_output
from edge.classifier import MaskClassifier
from edge.datasets import DatasetError, FaceSample
from edge.model_metadata import LABELS, ModelMetadata, file_sha256, save_metadata
from edge.paths import REPO_ROOT
from edge.runtime import load_interpreter, quant_params

log = logging.getLogger("convert")

MODEL_NAME = "mask_classifier.tflite"
PARITY_NAME = "mask_classifier_parity.json"
PARITY_REJECTED_NAME = "mask_classifier_parity.rejected.json"  # the report of a model not installed
MIN_CALIBRATION_CROPS = 300


class ParityError(RuntimeError):
    """The int8 model disagrees with the float model too often to ship."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m convert", description=__doc__.splitlines()[0])
    parser.add_argument("--keras-model", type=Path, required=True, help="model.keras of a training run")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "models", help="folder for the int8 model")
    parser.add_argument("--data", type=Path, help="root of split-list paths (default: the run's data_root)")
    parser.add_argument("--train-split", type=Path, help="training face list (default: found in the run)")
    parser.add_argument("--val-split", type=Path, help="validation face list (default: found in the run)")
    parser.add_argument(
        "--calibration-count",
        type=int,
        default=1000,
        help="most representative crops used (at least 300 needed)",
    )
    parser.add_argument("--min-agreement", type=float, default=0.99, help="float/int8 top-1 agreement floor")
    parser.add_argument(
        "--no-bias-correction", action="store_true", help="quantize the weights as trained (for comparison)"
    )
    parser.add_argument("--model-version", help="stored in the metadata (default: the run's, else today)")
    parser.add_argument("--threads", type=int, default=2, help="TFLite threads for the parity run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--logit-offset",
        action="append",
        default=[],
        metavar="LABEL=VALUE",
        help="add VALUE to LABEL's logit in the final layer before quantizing (recorded in the sidecar; "
        "see convert/logit_offsets.py); repeatable",
    )
    return parser


def _hash_split_side(run: TrainingOutput, side: str, other: list[FaceSample] | None) -> list[FaceSample]:
    """One side ("train" or "val") of the hash split of `run.data_root`, without any image of the run's
    list for the other side: a face calibrated on must never be one parity is checked on."""
    samples = samples_from_data(run.data_root)
    taken = {s.image.resolve() for s in other or []}
    if taken:
        kept = [s for s in samples if s.image.resolve() not in taken]
        other_name = "validation" if side == "train" else "training"
        log.info(
            "%d faces of the run's %s list kept out of the hash split", len(samples) - len(kept), other_name
        )
        samples = kept
    train, val = hash_split(samples, root=run.data_root)
    return train if side == "train" else val


def calibration_summary(labels: Sequence[str], names: Sequence[str] = LABELS) -> dict[str, int]:
    """Calibration faces by label, with a warning for a label it has none of: the int8 ranges are then
    set without the activations that label's faces cause."""
    counts = {name: sum(label == name for label in labels) for name in names}
    log.info("calibration faces by label: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    for name, n in counts.items():
        if n == 0:
            log.warning("calibration has no %s faces: int8 ranges are set without them", name)
    return counts


def calibration_crops(run: TrainingOutput, count: int, seed: int) -> CropSet:
    """Real training-split crops: the run's saved ones, else made from its list, else a hash split."""
    saved = run.saved_crops("representative")
    if saved is not None:
        crops = load_npz(saved, run.labels, run.spec)
        if crops.is_real is not None:
            crops = crops.subset(np.flatnonzero(crops.is_real))
        if len(crops) >= MIN_CALIBRATION_CROPS:
            return crops.subset(stratified_indices(crops.labels, count, seed))
        log.warning(
            "%s has only %d real crops; making calibration crops from the split list", saved, len(crops)
        )
    samples, origin = run.train_samples, "training split list"
    if samples is None:
        log.warning("the training run has no training list; splitting %s by image hash", run.data_root)
        samples = _hash_split_side(run, "train", run.val_samples)
        origin = f"hash split of {run.data_root}"
    crops = from_samples(stratified_pick(samples, count, seed), run.spec, origin)
    if len(crops) < MIN_CALIBRATION_CROPS:
        raise TrainingOutputError(
            f"only {len(crops)} real training faces; calibration needs {MIN_CALIBRATION_CROPS}"
        )
    return crops


def validation_crops(run: TrainingOutput) -> CropSet:
    """The whole validation split: the run's saved crops, else made from its list, else a hash split."""
    saved = run.saved_crops("validation")
    if saved is not None:
        return load_npz(saved, run.labels, run.spec)
    if run.val_samples is not None:
        return from_samples(run.val_samples, run.spec, "validation split list (real faces)")
    log.warning("the training run has no validation list; splitting %s by image hash", run.data_root)
    samples = _hash_split_side(run, "val", run.train_samples)
    return from_samples(samples, run.spec, f"hash split of {run.data_root}")


def _check_keras_model(model, run: TrainingOutput) -> None:
    in_shape, out_shape = tuple(model.input_shape), tuple(model.output_shape)
    size = run.spec.input_size
    if in_shape[1:] != (size, size, 3):
        raise TrainingOutputError(f"Keras model input is {in_shape}, the run's spec says {size} px")
    if out_shape[-1] != len(run.labels):
        raise TrainingOutputError(f"Keras model has {out_shape[-1]} outputs for {len(run.labels)} labels")


def _metadata(run: TrainingOutput, model_path: Path, version: str | None, conversion: dict) -> ModelMetadata:
    interpreter = load_interpreter(model_path, num_threads=1)
    input_detail, output_detail = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    check_io_quantization(input_detail, output_detail)
    data = run.summary.get("data")
    training = {
        "keras_model": run.keras_model.name,
        "keras_sha256": file_sha256(run.keras_model),
        "data": {k: v for k, v in data.items() if not isinstance(v, list)}
        if isinstance(data, dict)
        else data,
        "headline": run.summary.get("headline"),
        "conversion": conversion,
    }
    return ModelMetadata(
        labels=run.labels,
        preprocess=run.spec,
        input=quant_params(input_detail),
        output=quant_params(output_detail),
        model_version=version or str(run.summary.get("model_version") or time.strftime("%Y%m%d")),
        training={k: v for k, v in training.items() if v is not None},
    )


def _parity(model, classifier: MaskClassifier, val: CropSet, labels: list[str]) -> dict:
    float_probs = float_probabilities(model, val.crops)
    int8_probs = classifier.classify_crops(val.crops)
    report = parity_report(val.labels, float_probs, int8_probs, val.face_px, labels)
    if val.is_real is not None and val.is_real.any() and not val.is_real.all():
        real = np.flatnonzero(val.is_real)
        subset = val.subset(real)
        report["real_faces"] = parity_report(
            subset.labels, float_probs[real], int8_probs[real], subset.face_px, labels
        )
    return report


def convert(args: argparse.Namespace) -> dict:
    """Run the whole conversion; returns the parity report. Raises on any failed check."""
    import keras  # workstation only; imported late so `--help` is instant

    run = read_training_output(args.keras_model, args.data, args.train_split, args.val_split)
    calibration = calibration_crops(run, args.calibration_count, args.seed)
    log.info("calibrating on %d real training crops (%s)", len(calibration), calibration.origin)
    calibration_labels = calibration_summary(calibration.labels, run.labels)
    val = validation_crops(run)
    if len(val) == 0:
        raise TrainingOutputError(f"no validation faces in {val.origin}: parity is checked on them")
    model = keras.saving.load_model(run.keras_model, compile=False)
    _check_keras_model(model, run)
    offsets = parse_offsets(args.logit_offset, run.labels)
    apply_logit_offsets(model, offsets, run.labels)
    started = time.monotonic()
    to_quantize = model if args.no_bias_correction else correct_biases(model, calibration.crops)
    flatbuffer = to_int8_tflite(to_quantize, calibration.crops)
    log.info("converted in %.1f s: %d bytes", time.monotonic() - started, len(flatbuffer))

    with tempfile.TemporaryDirectory(prefix="maskwatch-convert-") as staging:
        staged = Path(staging) / MODEL_NAME
        staged.write_bytes(flatbuffer)
        conversion = {
            "calibration_crops": len(calibration),
            "calibration_from": calibration.origin,
            "calibration_by_label": calibration_labels,
            "bias_correction": not args.no_bias_correction,
            "logit_offsets": offsets,
        }
        metadata = _metadata(run, staged, args.model_version, conversion)
        save_metadata(metadata, staged)

        log.info("parity on %d validation faces (%s)", len(val), val.origin)
        report = _parity(model, MaskClassifier(staged, threads=args.threads), val, run.labels)
        report.update(
            validation_from=val.origin,
            model_bytes=len(flatbuffer),
            model_sha256=metadata.model_sha256,
            min_agreement=args.min_agreement,
        )
        parity = Path(staging) / PARITY_NAME
        parity.write_text(json.dumps(report, indent=2) + "\n")
        if report["agreement"] is None or report["agreement"] < args.min_agreement:
            # beside the installed model, under its own name: the installed model's report stays its own
            install({PARITY_REJECTED_NAME: parity}, args.out)
            raise ParityError(
                f"int8/float top-1 agreement {report['agreement']} is below {args.min_agreement} on "
                f"{report['n']} validation faces; model not installed, see {args.out / PARITY_REJECTED_NAME}"
            )
        conversion.update(
            validation_from=val.origin,
            agreement=report["agreement"],
            float_accuracy=report["float"]["accuracy"],
            int8_accuracy=report["int8"]["accuracy"],
        )
        sidecar = save_metadata(metadata, staged)
        install({MODEL_NAME: staged, sidecar.name: sidecar, PARITY_NAME: parity}, args.out)
        (args.out / PARITY_REJECTED_NAME).unlink(missing_ok=True)  # an earlier refusal no longer applies
    return report


def install(files: dict[str, Path], out: Path) -> None:
    """Put each staged file into `out` under its name without ever leaving a half-written one there.

    Every file is first copied beside its target under a temporary name, then renamed over it (atomic
    on one file system), the model before its sidecar. A failure while copying (a full disk) leaves the
    installed files as they were; a daemon starting between two renames finds a sidecar whose sha256
    does not name the model, an error at load rather than wrong answers.
    """
    out.mkdir(parents=True, exist_ok=True)
    temporary = {name: out / f".{name}.{os.getpid()}.tmp" for name in files}
    try:
        for name, source in files.items():
            shutil.copyfile(source, temporary[name])
        for name, path in temporary.items():
            os.replace(path, out / name)
    finally:
        for path in temporary.values():
            path.unlink(missing_ok=True)


def _ratio(value: float | None) -> str:
    """A share to four places, or `none` where no face fell in the slice."""
    return "none" if value is None else f"{value:.4f}"


def _print_summary(report: dict, out: Path) -> None:
    print(
        f"int8 model: {out / MODEL_NAME} ({report['model_bytes'] / 1e6:.2f} MB), parity on {report['n']} faces"
    )
    print(
        f"top-1 agreement {_ratio(report['agreement'])} (faces >= 32 px: {_ratio(report['agreement_ge32'])}); "
        f"accuracy float {_ratio(report['float']['accuracy'])}, int8 {_ratio(report['int8']['accuracy'])}"
    )
    for group in ("agreement_by_class", "agreement_by_size"):
        cells = [f"{k}: {_ratio(v['agreement'])} (n={v['n']})" for k, v in report[group].items() if v["n"]]
        print(f"  {group.replace('_', ' ')}: " + "; ".join(cells))
    if "real_faces" in report:
        real = report["real_faces"]
        print(f"  real faces only: agreement {_ratio(real['agreement'])} (n={real['n']})")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.calibration_count < MIN_CALIBRATION_CROPS:
        print(f"error: --calibration-count must be >= {MIN_CALIBRATION_CROPS}", file=sys.stderr)
        return 2
    try:
        report = convert(args)
    except (
        TrainingOutputError,
        DatasetError,
        CropSetError,
        QuantizationError,
        ParityError,
        LogitOffsetError,
        OSError,  # writing the model (a full disk, a read-only --out): what was installed stays
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_summary(report, args.out)
    return 0
