"""A tiny classifier with known answers, for tests that need a real .tflite without a trained model.

It keeps the shipped model's contract (float32 RGB 0..255 in, Rescaling to [-1, 1] first, softmax over
LABELS out) and decides by the dominant colour channel: red = with_mask, green = without_mask,
blue = mask_weared_incorrect. So a test can predict every answer, and a swapped colour order or a
wrong label order shows up as a wrong label, not as a slightly different score.

tests/data/color_classifier.tflite (+ .json) is this model converted by `python -m convert`'s own code,
committed so the classifier tests run where TensorFlow is not installed (the Pi). Rebuild it with
`python -m tests.color_model` after changing the converter.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from edge.model_metadata import LABELS

INPUT_SIZE = 24
FIXTURE = Path(__file__).parent / "data" / "color_classifier.tflite"
RGB_OF_LABEL = {  # a colour each label is predicted for, in RGB order
    "with_mask": (220, 40, 40),
    "without_mask": (40, 220, 40),
    "mask_weared_incorrect": (40, 40, 220),
}


def build_color_model(input_size: int = INPUT_SIZE):
    """The Keras model: Rescaling -> 1x1 identity conv -> mean per channel -> softmax(8 x channel)."""
    import keras

    inputs = keras.Input((input_size, input_size, 3), name="face_rgb_uint8")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_minus1_1")(inputs)
    x = keras.layers.Conv2D(3, 1, use_bias=False, name="identity")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name="scores")(x)
    model = keras.Model(inputs, outputs, name="color_classifier")
    model.get_layer("identity").set_weights([np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3)])
    model.get_layer("scores").set_weights([8.0 * np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    return model


def color_image(label: str, height: int = 40, width: int = 40, seed: int = 0) -> np.ndarray:
    """A noisy BGR image (as cv2 would load it) whose dominant colour means `label`."""
    rng = np.random.default_rng(seed)
    rgb = np.array(RGB_OF_LABEL[label], np.float32)
    noise = rng.normal(0, 25, (height, width, 3))
    image = np.clip(rgb + noise, 0, 255).astype(np.uint8)
    image[0, 0], image[-1, -1] = 0, 255  # every crop reaches both ends of the pixel range
    return np.ascontiguousarray(image[:, :, ::-1])


def write_training_run(
    folder: Path, data_root: Path, per_label: int = 130, input_size: int = INPUT_SIZE
) -> Path:
    """A training-run folder like `python -m train` writes: model.keras, training_summary.json, split.json.

    Face images are written as class folders under `data_root`; 20% of each label is validation.
    """
    from edge.preprocess import PreprocessSpec

    folder.mkdir(parents=True, exist_ok=True)
    split: dict[str, list[dict]] = {"train": [], "val": []}
    for label in LABELS:
        for i in range(per_label):
            relative = f"{label}/{i:04d}.png"
            (data_root / label).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(data_root / relative), color_image(label, 30 + i % 50, 30 + i % 50, seed=i))
            split["val" if i % 5 == 0 else "train"].append({"image": relative, "label": label, "box": None})
    build_color_model(input_size).save(folder / "model.keras")
    (folder / "split.json").write_text(json.dumps(split))
    summary = {"labels": list(LABELS), "preprocess": PreprocessSpec(input_size=input_size).to_dict()}
    (folder / "training_summary.json").write_text(json.dumps({**summary, "model_version": "color-test"}))
    return folder / "model.keras"


def main() -> int:
    """Rebuild tests/data/color_classifier.tflite through the real conversion path."""
    import tempfile

    from convert.cli import main as convert_main

    with tempfile.TemporaryDirectory() as tmp:
        keras_model = write_training_run(Path(tmp) / "run", Path(tmp) / "data")
        code = convert_main(["--keras-model", str(keras_model), "--data", str(Path(tmp) / "data"),
                             "--out", str(Path(tmp) / "out"), "--model-version", "color-test"])  # fmt: skip
        if code == 0:
            FIXTURE.parent.mkdir(exist_ok=True)
            for suffix in (".tflite", ".json"):
                FIXTURE.with_suffix(suffix).write_bytes(
                    (Path(tmp) / "out" / f"mask_classifier{suffix}").read_bytes()
                )
    return code


if __name__ == "__main__":
    sys.exit(main())
