"""Load the ImageNet MobileNetV2 weights from the Keras 2 h5 file into a Keras 3 MobileNetV2 of any size.

The fetched file is a whole Keras 2.2.4-tf model whose base is MobileNetV2-224; Keras 3 cannot load it
as a model, but its layers keep the stock names (`Conv1`, `bn_Conv1`, `block_3_expand`, ...) under
`model_weights/<layer>/<layer>/<weight>:0`. Convolution and BatchNorm weights do not depend on the input
size, so one file serves 96 to 224 px. Every base layer with weights must be filled with matching shapes,
BatchNorm moving statistics included; anything missing is an error, never a silent random init.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np

log = logging.getLogger(__name__)


class WeightLoadError(ValueError):
    """The weights file does not match the model: a layer or a weight is missing or has another shape."""


def _short_name(variable) -> str:
    """`kernel`, `gamma`, `moving_mean`, ... from a Keras 3 variable (path `layer/kernel` or name)."""
    name = getattr(variable, "path", None) or variable.name
    return name.split("/")[-1].split(":")[0]


def read_layer_weights(h5_path: Path) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {weight name: array}} for every layer in the h5 file that has weights."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(h5_path, "r") as h5:
        root = h5.get("model_weights", h5)
        for layer_name in root:
            group = root[layer_name]
            arrays: dict[str, np.ndarray] = {}

            def collect(name: str, item, arrays=arrays) -> None:
                if isinstance(item, h5py.Dataset):
                    arrays[name.split("/")[-1].split(":")[0]] = item[()]

            group.visititems(collect)
            if arrays:
                layers[layer_name] = arrays
    return layers


def load_imagenet_weights(base, h5_path: Path) -> list[str]:
    """Fill every weighted layer of the Keras MobileNetV2 `base` from `h5_path`; return the layer names.

    Raises WeightLoadError when a base layer has no weights in the file or a shape differs.
    """
    stored = read_layer_weights(h5_path)
    loaded = []
    for layer in base.layers:
        if not layer.weights:
            continue
        if layer.name not in stored:
            raise WeightLoadError(f"{h5_path}: no weights for layer {layer.name!r}")
        source = stored[layer.name]
        values = []
        for variable in layer.weights:
            short = _short_name(variable)
            candidates = [short, "depthwise_kernel"] if short == "kernel" else [short]
            array = next((source[c] for c in candidates if c in source), None)
            if array is None:
                raise WeightLoadError(
                    f"{h5_path}: layer {layer.name!r} has no {short!r} (has {sorted(source)})"
                )
            if tuple(array.shape) != tuple(variable.shape):
                raise WeightLoadError(
                    f"{h5_path}: {layer.name}/{short} has shape {array.shape}, the model wants {tuple(variable.shape)}"
                )
            values.append(array)
        layer.set_weights(values)
        loaded.append(layer.name)
    log.info("loaded ImageNet weights into %d MobileNetV2 layers from %s", len(loaded), h5_path)
    return loaded
