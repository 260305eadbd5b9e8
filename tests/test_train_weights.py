"""The ImageNet loader fills every MobileNetV2 layer by name from a Keras 2 style h5, or fails loudly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.workstation

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

from train.weights import WeightLoadError, load_imagenet_weights, read_layer_weights  # noqa: E402

KERAS2_NAMES = {"kernel": "depthwise_kernel"}  # Keras 2 wrote depthwise kernels under this name


def _base(size: int = 32):
    return keras.applications.MobileNetV2(
        input_shape=(size, size, 3), include_top=False, weights=None, alpha=1.0
    )


def _write_keras2_h5(path: Path, base, skip: str | None = None, bad_shape: str | None = None) -> None:
    """Every weighted layer under model_weights/<layer>/<layer>/<name>:0, random values, as Keras 2 did."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        root = h5.create_group("model_weights")
        for layer in base.layers:
            if not layer.weights or layer.name == skip:
                continue
            group = root.create_group(layer.name).create_group(layer.name)
            for variable in layer.weights:
                short = variable.path.split("/")[-1]
                if isinstance(layer, keras.layers.DepthwiseConv2D):
                    short = KERAS2_NAMES.get(short, short)
                shape = tuple(variable.shape)
                if layer.name == bad_shape:
                    shape = shape[:-1] + (shape[-1] + 1,)
                group.create_dataset(f"{short}:0", data=rng.normal(size=shape).astype(np.float32))


def test_every_layer_gets_its_weights_by_name(tmp_path):
    source = _base()
    _write_keras2_h5(tmp_path / "w.h5", source)
    stored = read_layer_weights(tmp_path / "w.h5")
    target = _base(48)  # another input size: conv and BN weights do not depend on it
    loaded = load_imagenet_weights(target, tmp_path / "w.h5")
    assert loaded == [layer.name for layer in target.layers if layer.weights]
    bn = target.get_layer("bn_Conv1")
    assert np.allclose(bn.moving_variance.numpy(), stored["bn_Conv1"]["moving_variance"])
    depthwise = target.get_layer("block_5_depthwise")
    assert np.allclose(depthwise.get_weights()[0], stored["block_5_depthwise"]["depthwise_kernel"])


def test_a_missing_layer_is_an_error(tmp_path):
    base = _base()
    _write_keras2_h5(tmp_path / "w.h5", base, skip="block_3_project_BN")
    with pytest.raises(WeightLoadError, match="block_3_project_BN"):
        load_imagenet_weights(base, tmp_path / "w.h5")


def test_a_wrong_shape_is_an_error(tmp_path):
    base = _base()
    _write_keras2_h5(tmp_path / "w.h5", base, bad_shape="Conv_1")
    with pytest.raises(WeightLoadError, match="Conv_1"):
        load_imagenet_weights(base, tmp_path / "w.h5")
