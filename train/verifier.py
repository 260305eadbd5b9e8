"""Train the face verifier and ship it: `python -m train.verifier [--scenes S] [--seed N] [--out FILE]`.

A small CNN from scratch (48 px input, ~86k parameters, about six minutes on two CPU cores) that tells a
face, masked or not, from the background patches BlazeFace takes for faces. Examples come from
train/verifier_data.py (detector candidates, none from the evaluation frames); the crops are cached
under runs/verifier/. The model is converted to full-integer TFLite with convert.quantize (uint8 in,
uint8 probabilities out) and written with its sidecar (edge/verifier.py): crop spec, threshold,
SHA-256 and a summary of the data and validation numbers. The threshold is the lowest that lets at
most `NOT_FACE_BUDGET` of the validation not-faces in the uncertain band through: each one that passes
becomes a false positive of the detector, while most band faces pass well above it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import time
import zlib
from pathlib import Path

import numpy as np

from bench.detector_data import SCENE_CHOICES
from edge.config import DetectorConfig
from edge.faces import FaceDetector
from edge.model_metadata import save_metadata
from edge.preprocess import PreprocessSpec
from edge.verifier import LABELS, VerifierMetadata
from train.verifier_data import DATA_VERSION, MINE_FINE_SIZE, CropSet, excluded_sources, mine

log = logging.getLogger(__name__)

SPEC = PreprocessSpec(input_size=48, crop_margin=0.25)
DEFAULT_OUT = Path("models/face_verifier.tflite")
CACHE_DIR = Path("runs/verifier")
VAL_FRACTION = 0.12
NOT_FACE_BUDGET = 0.015  # share of validation not-faces in the band the threshold may let through
BAND = (0.2, 0.7)  # BlazeFace scores of the candidates the verifier is asked about
WIDTH = 48  # filters of the first convolution; the separable ones have 2, 4 and 6 times as many


def build_model(input_size: int = SPEC.input_size, width: int = WIDTH):
    """uint8-range pixels in (the model rescales to [-1, 1] itself), (not_face, face) softmax out."""
    import keras
    from keras import layers

    inputs = keras.Input((input_size, input_size, 3))
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for filters in (2 * width, 4 * width, 6 * width):
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(len(LABELS), activation="softmax")(x)
    return keras.Model(inputs, outputs, name="face_verifier")


def split(groups: list[str], fraction: float = VAL_FRACTION) -> np.ndarray:
    """True for validation examples: a stable hash of the group, so a face or scene stays on one side."""
    return np.array([zlib.crc32(g.encode()) % 1000 < fraction * 1000 for g in groups], bool)


def augment(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror half the crops and vary brightness and contrast: what a door camera does to a face."""
    out = crops.astype(np.float32)
    flip = rng.random(len(out)) < 0.5
    out[flip] = out[flip, :, ::-1]
    gain = rng.uniform(0.7, 1.3, (len(out), 1, 1, 1))
    bias = rng.uniform(-25, 25, (len(out), 1, 1, 1))
    mean = out.mean(axis=(1, 2, 3), keepdims=True)
    return np.clip((out - mean) * gain + mean + bias, 0, 255)


def fit(
    data: CropSet, val: np.ndarray, epochs: int = 14, batch_size: int = 128, seed: int = 0, width: int = WIDTH
):
    """The Keras model trained on the examples outside `val`, classes weighted equally."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(data.crops.shape[1], width)
    train_x, train_y = data.crops[~val], data.labels[~val]
    counts = np.bincount(train_y, minlength=2)
    weights = (len(train_y) / (2.0 * np.maximum(counts, 1)))[train_y].astype(np.float32)
    steps = epochs * int(np.ceil(len(train_y) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, steps)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    val_x = data.crops[val].astype(np.float32)
    for epoch in range(epochs):
        started = time.monotonic()
        history = model.fit(
            augment(train_x, rng), train_y, sample_weight=weights, batch_size=batch_size, epochs=1, verbose=0
        )
        val_acc = float(np.mean(model.predict(val_x, verbose=0).argmax(1) == data.labels[val]))
        log.info(
            "epoch %d/%d: loss %.4f, val accuracy %.4f (%.0f s)",
            epoch + 1,
            epochs,
            history.history["loss"][-1],
            val_acc,
            time.monotonic() - started,
        )
    return model


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """The lowest face probability (0.05 to 0.99 in steps of 0.01) that lets at most NOT_FACE_BUDGET of
    the band's validation not-faces through (all not-faces if the band has fewer than 50)."""
    band = (scores >= BAND[0]) & (scores < BAND[1])
    negatives = probabilities[band & (labels == 0)]
    if len(negatives) < 50:
        negatives = probabilities[labels == 0]
    for threshold in np.round(np.arange(0.05, 1.0, 0.01), 2):
        if np.mean(negatives >= threshold) <= NOT_FACE_BUDGET:
            return float(threshold)
    return 0.99


def rates(probabilities, labels, threshold, mask=None) -> dict:
    mask = np.ones(len(labels), bool) if mask is None else mask
    pos, neg = mask & (labels == 1), mask & (labels == 0)
    keep = probabilities >= threshold
    return {
        "positives": int(pos.sum()),
        "negatives": int(neg.sum()),
        "faces_kept": round(float(keep[pos].mean()), 4) if pos.any() else None,
        "not_faces_kept": round(float(keep[neg].mean()), 4) if neg.any() else None,
    }


def int8_probabilities(tflite: bytes, crops: np.ndarray) -> np.ndarray:
    from edge.runtime import dequantize, make_interpreter, quant_params

    interpreter = make_interpreter(tflite, 1)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    result = np.zeros(len(crops), np.float32)
    for i, crop in enumerate(crops):
        interpreter.set_tensor(inp["index"], crop[None])
        interpreter.invoke()
        result[i] = dequantize(interpreter.get_tensor(out["index"])[0], quant_params(out))[1]
    return result


def export(model, data: CropSet, val: np.ndarray, out: Path, training: dict) -> VerifierMetadata:
    """Write the int8 model and its sidecar; the threshold and the numbers come from the int8 model."""
    from convert.quantize import check_io_quantization, to_int8_tflite
    from edge.runtime import make_interpreter, quant_params

    rng = np.random.default_rng(1)
    calibration = data.crops[~val][rng.permutation(int((~val).sum()))[:400]]
    tflite = to_int8_tflite(model, calibration)
    interpreter = make_interpreter(tflite, 1)
    interpreter.allocate_tensors()
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    check_io_quantization(inp, outp)

    val_crops, val_labels, val_scores = data.crops[val], data.labels[val], data.scores[val]
    int8 = int8_probabilities(tflite, val_crops)
    floats = model.predict(val_crops.astype(np.float32), verbose=0)[:, 1]
    threshold = choose_threshold(int8, val_labels, val_scores)
    band = (val_scores >= BAND[0]) & (val_scores < BAND[1])
    training = {
        **training,
        "validation": {
            "all": rates(int8, val_labels, threshold),
            "band": {"scores": list(BAND), **rates(int8, val_labels, threshold, band)},
            "int8_float_agreement": round(float(np.mean((int8 >= threshold) == (floats >= threshold))), 4),
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(tflite)
    meta = VerifierMetadata(
        preprocess=_spec(data.crops.shape[1]),
        threshold=round(threshold, 4),
        input=quant_params(inp),
        output=quant_params(outp),
        training=training,
    )
    save_metadata(meta, out)
    log.info("wrote %s (%d bytes) and its sidecar: threshold %.3f, %s", out, len(tflite), threshold, training)
    return meta


def _spec(size: int) -> PreprocessSpec:
    return PreprocessSpec(**{**SPEC.to_dict(), "input_size": size})


def summary(data: CropSet, data_root: Path, scenes: str = "train") -> dict:
    groups, ids = excluded_sources(data_root)
    by_source: dict[str, dict[str, int]] = {}
    for source, label in zip(data.sources, data.labels, strict=True):
        entry = by_source.setdefault(source, {"face": 0, "not_face": 0})
        entry[LABELS[label]] += 1
    return {
        "examples": by_source,
        "mining": data.summary,
        "left_out": {
            "faces2_groups_of_closeups": len(groups),
            "maskedfacenet_ids_of_closeups": len(ids),
            "scenes": _scenes_left_out(scenes),
        },
    }


def cache_path(
    frames: int,
    scenes: str,
    spec: PreprocessSpec = SPEC,
    fine_size: int = MINE_FINE_SIZE,
    lamps_p: float = 0.0,
) -> Path:
    """Where the mined crops for these settings are kept: keyed by everything that changes them."""
    key_fields = [spec.to_dict(), frames, DATA_VERSION, scenes]
    if (fine_size, lamps_p) != (MINE_FINE_SIZE, 0.0):  # the shipped data keeps the key it always had
        key_fields += [fine_size, lamps_p]
    key = hashlib.sha256(json.dumps(key_fields).encode()).hexdigest()[:10]
    return CACHE_DIR / f"crops_{spec.input_size}_{key}.npz"


def _command(args) -> str:
    options = [f"--scenes {args.scenes}"] + ([f"--seed {args.seed}"] if args.seed else [])
    options += [f"--mine-fine-size {args.mine_fine_size}"] if args.mine_fine_size != MINE_FINE_SIZE else []
    options += [f"--lamps {args.lamps:g}"] if args.lamps else []
    options += [f"--width {args.width}"] if args.width != WIDTH else []
    options += [f"--input-size {args.input_size}"] if args.input_size != SPEC.input_size else []
    return "python -m train.verifier " + " ".join(options)


def _scenes_left_out(scenes: str) -> str:
    close_up_regions = "the scene regions the close-ups use as backgrounds"
    if scenes == "all":
        return f"none of the scene images; {close_up_regions}"
    other = "eval" if scenes == "train" else "train"
    return f"the '{other}' half of bench.detector_data.split_scenes, and {close_up_regions}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.verifier", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the .tflite to write (and .json)")
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--frames", type=int, default=4000, help="composed training frames to mine")
    parser.add_argument("--remine", action="store_true", help="mine the crops again, ignoring the cache")
    parser.add_argument("--seed", type=int, default=0, help="training seed (weights, order, augmentation)")
    parser.add_argument(
        "--scenes",
        choices=SCENE_CHOICES,
        default="train",
        help="VOC scenes to learn from: a half of bench.detector_data.split_scenes, or all",
    )
    parser.add_argument(
        "--mine-fine-size",
        type=int,
        default=MINE_FINE_SIZE,
        help="fine pass (px) of the detector that mines the candidates; the shipped verifier's: 256",
    )
    parser.add_argument(
        "--lamps",
        type=float,
        default=0.0,
        help="share of composed frames with lamps and flares drawn in as negatives (tried, not shipped)",
    )
    parser.add_argument(
        "--width", type=int, default=WIDTH, help="filters of the first convolution (the model's capacity)"
    )
    parser.add_argument(
        "--input-size", type=int, default=SPEC.input_size, help="side of the verifier's square crop (px)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.monotonic()
    spec = _spec(args.input_size)
    cache = cache_path(args.frames, args.scenes, spec, fine_size=args.mine_fine_size, lamps_p=args.lamps)
    if cache.is_file() and not args.remine:
        data = CropSet.load(cache)
        data.summary = json.loads(cache.with_suffix(".json").read_text())
    else:
        detector = FaceDetector(DetectorConfig(fine_size=args.mine_fine_size))
        data = mine(args.data, spec, detector, frames=args.frames, scenes=args.scenes, lamps_p=args.lamps)
        cache.parent.mkdir(parents=True, exist_ok=True)
        data.save(cache)
        cache.with_suffix(".json").write_text(json.dumps(data.summary))
    val = split(data.groups)
    model = fit(data, val, epochs=args.epochs, seed=args.seed, width=args.width)
    training = {
        **summary(data, args.data, args.scenes),
        "model": {
            "parameters": int(model.count_params()),
            "width": args.width,
            "epochs": args.epochs,
            "seed": args.seed,
        },
        "command": _command(args),
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "minutes": round((time.monotonic() - started) / 60, 1),
    }
    export(model, data, val, args.out, training)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
