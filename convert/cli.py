"""`python -m convert`: trained Keras model -> int8 TFLite + metadata sidecar + parity report.

Steps, in order: read the training run (spec, labels, split), calibrate on real training-split crops,
convert, check the I/O quantization, write the sidecar, run the int8 model through the edge's own
MaskClassifier (so the sidecar round trip is tested on every conversion) against the float model on the
validation split, and only then install the pair into --out. A model below the agreement floor is not
installed; its parity report is, so the failure can be read.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from convert.parity import float_probabilities, parity_report
from convert.quantize import QuantizationError, check_io_quantization, to_int8_tflite
from convert.samples import hash_split, samples_from_data, stratified_pick
from convert.training_output import TrainingOutput, TrainingOutputError, read_training_output
from edge.classifier import MaskClassifier
from edge.datasets import DatasetError, FaceSample, iter_face_crops
from edge.model_metadata import ModelMetadata, file_sha256, save_metadata
from edge.paths import REPO_ROOT
from edge.preprocess import PreprocessSpec
from edge.runtime import load_interpreter, quant_params

log = logging.getLogger("convert")

MODEL_NAME = "mask_classifier.tflite"
PARITY_NAME = "mask_classifier_parity.json"
MIN_CALIBRATION_CROPS = 300
DEFAULT_DATA = Path(os.environ.get("MASKWATCH_DATA", REPO_ROOT.parent / "shared" / "data"))


class ParityError(RuntimeError):
    """The int8 model disagrees with the float model too often to ship."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m convert", description=__doc__.splitlines()[0])
    parser.add_argument("--keras-model", type=Path, required=True, help="model.keras of a training run")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "models", help="folder for the int8 model")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="root that split paths are relative to"
    )
    parser.add_argument("--train-split", type=Path, help="training face list (default: found in the run)")
    parser.add_argument("--val-split", type=Path, help="validation face list (default: found in the run)")
    parser.add_argument("--calibration-count", type=int, default=500, help="representative crops (>= 300)")
    parser.add_argument("--min-agreement", type=float, default=0.99, help="float/int8 top-1 agreement floor")
    parser.add_argument("--model-version", help="stored in the metadata (default: the run's, else today)")
    parser.add_argument("--threads", type=int, default=2, help="TFLite threads for the parity run")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _splits(run: TrainingOutput, data_root: Path) -> tuple[list[FaceSample], list[FaceSample], str]:
    if run.train_samples and run.val_samples:
        return run.train_samples, run.val_samples, "training run split"
    log.warning("the training run has no split lists; splitting %s by image hash instead", data_root)
    train, val = hash_split(samples_from_data(data_root))
    return run.train_samples or train, run.val_samples or val, f"hash split of {data_root}"


def _crops(samples: list[FaceSample], spec: PreprocessSpec) -> tuple[np.ndarray, list[str], list[int]]:
    crops, labels, heights = [], [], []
    for sample, crop, height in iter_face_crops(samples, spec):
        crops.append(crop)
        labels.append(sample.label)
        heights.append(height)
    size = spec.input_size
    return np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8), labels, heights


def _check_keras_model(model, spec: PreprocessSpec, labels: list[str]) -> None:
    in_shape, out_shape = tuple(model.input_shape), tuple(model.output_shape)
    if in_shape[1:] != (spec.input_size, spec.input_size, 3):
        raise TrainingOutputError(
            f"Keras model input is {in_shape}, the run's spec says {spec.input_size} px"
        )
    if out_shape[-1] != len(labels):
        raise TrainingOutputError(f"Keras model has {out_shape[-1]} outputs for {len(labels)} labels")


def _metadata(run: TrainingOutput, model_path: Path, args, extra: dict) -> ModelMetadata:
    interpreter = load_interpreter(model_path, num_threads=1)
    input_detail, output_detail = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    check_io_quantization(input_detail, output_detail)
    version = args.model_version or str(run.summary.get("model_version") or time.strftime("%Y%m%d"))
    training = {
        k: run.summary[k] for k in ("data", "data_summary", "input_size", "created") if k in run.summary
    }
    training.update(keras_model=run.keras_model.name, keras_sha256=file_sha256(run.keras_model), **extra)
    return ModelMetadata(
        labels=run.labels,
        preprocess=run.spec,
        input=quant_params(input_detail),
        output=quant_params(output_detail),
        model_version=version,
        training=training,
    )


def convert(args: argparse.Namespace) -> dict:
    """Run the whole conversion; returns the parity report. Raises on any failed check."""
    import keras  # workstation only; imported late so `--help` is instant

    run = read_training_output(args.keras_model, args.data, args.train_split, args.val_split)
    train, val, split_source = _splits(run, args.data)
    if len(train) < MIN_CALIBRATION_CROPS:
        raise TrainingOutputError(
            f"only {len(train)} training faces; calibration needs {MIN_CALIBRATION_CROPS}"
        )
    calibration_samples = stratified_pick(train, args.calibration_count, args.seed)
    calibration, _, _ = _crops(calibration_samples, run.spec)
    log.info("calibrating on %d real training crops (%s)", len(calibration), split_source)

    model = keras.saving.load_model(run.keras_model, compile=False)
    _check_keras_model(model, run.spec, run.labels)
    started = time.monotonic()
    flatbuffer = to_int8_tflite(model, calibration)
    log.info("converted in %.1f s: %d bytes", time.monotonic() - started, len(flatbuffer))

    with tempfile.TemporaryDirectory(prefix="maskwatch-convert-") as staging:
        staged = Path(staging) / MODEL_NAME
        staged.write_bytes(flatbuffer)
        conversion = {"calibration_crops": len(calibration), "split": split_source}
        metadata = _metadata(run, staged, args, {"conversion": conversion})
        save_metadata(metadata, staged)

        val_crops, val_labels, val_px = _crops(val, run.spec)
        log.info("parity on %d validation faces", len(val_crops))
        int8_probs = MaskClassifier(staged, threads=args.threads).classify_crops(val_crops)
        report = parity_report(
            val_labels, float_probabilities(model, val_crops), int8_probs, val_px, run.labels
        )
        report.update(split=split_source, model_bytes=len(flatbuffer), min_agreement=args.min_agreement)

        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / PARITY_NAME).write_text(json.dumps(report, indent=2) + "\n")
        if report["agreement"] is None or report["agreement"] < args.min_agreement:
            raise ParityError(
                f"int8/float top-1 agreement {report['agreement']} is below {args.min_agreement} on "
                f"{report['n']} validation faces; model not installed, see {args.out / PARITY_NAME}"
            )
        conversion.update(agreement=report["agreement"], int8_accuracy=report["int8"]["accuracy"])
        save_metadata(metadata, staged)
        for name in (MODEL_NAME, staged.with_suffix(".json").name):
            shutil.copyfile(Path(staging) / name, args.out / name)
    return report


def _print_summary(report: dict, out: Path) -> None:
    print(
        f"int8 model: {out / MODEL_NAME} ({report['model_bytes'] / 1e6:.2f} MB), parity on {report['n']} faces"
    )
    print(
        f"top-1 agreement {report['agreement']:.4f}; accuracy float {report['float']['accuracy']:.4f}, "
        f"int8 {report['int8']['accuracy']:.4f}"
    )
    for group in ("agreement_by_class", "agreement_by_size"):
        cells = [f"{k}: {v['agreement']:.4f} (n={v['n']})" for k, v in report[group].items() if v["n"]]
        print(f"  {group.replace('_', ' ')}: " + "; ".join(cells))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.calibration_count < MIN_CALIBRATION_CROPS:
        print(f"error: --calibration-count must be >= {MIN_CALIBRATION_CROPS}", file=sys.stderr)
        return 2
    try:
        report = convert(args)
    except (TrainingOutputError, DatasetError, QuantizationError, ParityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_summary(report, args.out)
    return 0
