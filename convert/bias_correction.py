"""Bias correction: undo the mean shift that int8 weights cause, before the converter quantizes them.

MobileNetV2's 3x3 depthwise kernels have nine weights per channel, and after batch norm is folded into
them a single large weight sets the int8 step for the other eight. The rounding error does not average
out: it shifts each output channel's mean, block after block, and on our models it alone flips about
0.5% of top-1 answers (weights-only int8 against float). The shift is predictable: for output channel c
it is sum(delta_W[c] * E[x]), with delta_W the int8 rounding error of the folded kernel and E[x] the
channel means of the layer's input on calibration crops. Subtracting it from the batch norm's beta
(which becomes the folded bias) removes it (Nagel et al. 2019, "Data-Free Quantization Through Weight
Equalization and Bias Correction", section 4.2; here with empirical means).

The float model used for parity is never changed: correction works on a copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

INT8_MAX = 127  # TFLite per-channel weights are symmetric int8 in [-127, 127]


@dataclass(frozen=True)
class ConvBatchNorm:
    """A Conv2D or DepthwiseConv2D whose only consumer is a BatchNormalization (folded by the converter)."""

    conv: object
    batch_norm: object
    depthwise: bool


def _conv_batchnorm_pairs(model) -> list[ConvBatchNorm]:
    """The conv + batch-norm pairs at the top level of one functional model, in graph order."""
    import keras

    pairs = []
    layers = list(model.layers)
    for conv, after in zip(layers, layers[1:], strict=False):
        depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)
        plain = type(conv) is keras.layers.Conv2D and conv.groups == 1
        if (
            (depthwise or plain)
            and isinstance(after, keras.layers.BatchNormalization)
            and after.input is conv.output
        ):
            pairs.append(ConvBatchNorm(conv, after, depthwise))
    return pairs


def folded_kernel(pair: ConvBatchNorm) -> np.ndarray:
    """The kernel with the batch norm's scale folded in, as the converter computes it: (kh, kw, in, out)."""
    kernel = np.asarray(pair.conv.kernel, dtype=np.float64)
    gamma, _, _, variance = (np.asarray(w, np.float64) for w in pair.batch_norm.get_weights())
    factor = gamma / np.sqrt(variance + pair.batch_norm.epsilon)
    if pair.depthwise:  # (kh, kw, channels, multiplier): output channel = channel * multiplier + m
        return kernel * factor.reshape(kernel.shape[2], kernel.shape[3])
    return kernel * factor


def int8_rounding_error(kernel: np.ndarray, depthwise: bool) -> np.ndarray:
    """Quantized minus float kernel, per-channel symmetric int8 over the output channel axis."""
    axes = (0, 1) if depthwise else (0, 1, 2)
    scale = np.abs(kernel).max(axis=axes, keepdims=True) / INT8_MAX
    scale = np.where(scale == 0, 1.0, scale)
    return np.round(kernel / scale) * scale - kernel


def expected_shift(pair: ConvBatchNorm, input_means: np.ndarray) -> np.ndarray:
    """E[delta_W x] per output channel, treating every kernel tap as seeing the channel mean."""
    error = int8_rounding_error(folded_kernel(pair), pair.depthwise)
    if pair.depthwise:
        return (error.sum(axis=(0, 1)) * input_means[:, None]).reshape(-1)
    return np.einsum("hwio,i->o", error, input_means)


def _input_means(
    submodel, pairs: list[ConvBatchNorm], inputs: np.ndarray, batch_size: int
) -> list[np.ndarray]:
    """Mean of each pair's conv input over calibration crops and positions, by one probe model."""
    import keras

    pooled = [keras.layers.GlobalAveragePooling2D()(pair.conv.input) for pair in pairs]
    probe = keras.Model(submodel.input, pooled)  # one input: the chain feeds one array
    sums = [np.zeros(int(p.shape[-1]), np.float64) for p in pooled]
    for start in range(0, len(inputs), batch_size):
        outputs = probe(inputs[start : start + batch_size], training=False)
        for total, output in zip(
            sums, outputs if isinstance(outputs, list | tuple) else [outputs], strict=True
        ):
            total += np.asarray(output, np.float64).sum(axis=0)
    return [total / len(inputs) for total in sums]


def _correct(submodel, inputs: np.ndarray, batch_size: int) -> int:
    pairs = _conv_batchnorm_pairs(submodel)
    if pairs:
        for pair, means in zip(pairs, _input_means(submodel, pairs, inputs, batch_size), strict=True):
            gamma, beta, mean, variance = pair.batch_norm.get_weights()
            beta = beta - expected_shift(pair, means).astype(beta.dtype)
            pair.batch_norm.set_weights([gamma, beta, mean, variance])
    return len(pairs)


def _is_chain(model) -> bool:
    """Every top-level layer is called once, on the previous layer's output (Keras node records)."""
    layers = list(model.layers)
    if any(len(getattr(layer, "_inbound_nodes", [])) != 1 for layer in layers):
        return False
    for before, after in zip(layers, layers[1:], strict=False):
        inputs, outputs = after._inbound_nodes[0].input_tensors, before._inbound_nodes[0].outputs
        if len(inputs) != 1 or len(outputs) != 1 or inputs[0] is not outputs[0]:
            return False
    return True


def correct_biases(model, calibration_crops: np.ndarray, batch_size: int = 32):
    """A copy of `model` whose conv + batch-norm biases absorb the expected int8 weight error.

    Pairs at the model's top level are corrected, and those inside nested functional models (a
    keras.applications base) when the top level is a chain of layers, which is how their inputs are
    computed. Anything else is left as it is.
    """
    import keras

    corrected = keras.models.clone_model(model)
    corrected.set_weights(model.get_weights())
    x = np.asarray(calibration_crops, np.float32)
    count = _correct(corrected, x, batch_size)
    if _is_chain(corrected):
        for layer in corrected.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if isinstance(layer, keras.Model):
                count += _correct(layer, x, batch_size)
            x = np.concatenate(
                [
                    np.asarray(layer(x[i : i + batch_size], training=False))
                    for i in range(0, len(x), batch_size)
                ]
            )
    else:
        log.warning("bias correction: the model's top level is not a chain; nested layers left uncorrected")
    log.info("bias correction: %d conv + batch-norm layers corrected", count)
    return corrected
