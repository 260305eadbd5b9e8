"""The classifier: uint8 RGB in, MobileNetV2 (alpha 1.0, ImageNet) features, three softmax scores out.

The first layer is the preprocessing contract's normalization (Rescaling to [-1, 1]), so every caller
feeds the same 0..255 pixels and the int8 converter sees one input range. The head is small on purpose:
pooling, dropout, one dense layer; the base carries the knowledge.
"""

from __future__ import annotations

from pathlib import Path

import keras

from edge.model_metadata import LABELS
from train.weights import load_imagenet_weights

BASE_NAME = "mobilenetv2_1.00"


def build_classifier(
    input_size: int, weights_path: Path | None, dropout: float = 0.3, seed: int = 0
) -> keras.Model:
    """MobileNetV2 classifier for `input_size` px crops; ImageNet weights from `weights_path` (None: random)."""
    base = keras.applications.MobileNetV2(
        input_shape=(input_size, input_size, 3), include_top=False, weights=None, alpha=1.0, name=BASE_NAME
    )
    if weights_path is not None:
        load_imagenet_weights(base, weights_path)
    inputs = keras.Input((input_size, input_size, 3), name="face_rgb_uint8")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_minus1_1")(inputs)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=f"maskwatch_mobilenetv2_{input_size}")


def base_of(model: keras.Model) -> keras.Model:
    return model.get_layer(BASE_NAME)


def freeze_base(model: keras.Model) -> None:
    """Phase 1: train the head only; the base runs in inference mode (BatchNorm statistics stay ImageNet's)."""
    base_of(model).trainable = False


def unfreeze_top(model: keras.Model, first_block: int) -> int:
    """Phase 2: train blocks `first_block`..16 and the last 1x1 conv; BatchNorm layers stay frozen.

    Frozen BatchNorm keeps the ImageNet statistics, which small CPU batches would only make noisy.
    Returns how many base layers became trainable.
    """
    base = base_of(model)
    base.trainable = True
    prefix = f"block_{first_block}_"
    start = next(i for i, layer in enumerate(base.layers) if layer.name.startswith(prefix))
    count = 0
    for i, layer in enumerate(base.layers):
        trainable = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable
        count += int(trainable)
    return count
