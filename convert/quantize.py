"""Keras float model to a full-integer TFLite flatbuffer, and the checks its I/O must pass.

Input is uint8 because camera pixels are uint8: with the model's Rescaling layer first and calibration
crops spanning 0..255, the input quantization is exactly scale 1, zero point 0, so the edge feeds crop
pixels straight in with no arithmetic and no rounding. Output is uint8 too: softmax scores are quantized
at scale 1/256, zero point 0, so a raw output byte reads as probability x 256, the same convention as the
input and as Coral/pycoral classifiers; the runtime dequantizes through edge.runtime either way.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

log = logging.getLogger(__name__)

INPUT_DTYPE = "uint8"
OUTPUT_DTYPE = "uint8"


class QuantizationError(RuntimeError):
    """The converted model's input or output is not quantized the way the edge runtime relies on."""


def anchor_full_range(crops: np.ndarray) -> np.ndarray:
    """The crops, with one stretched to 0..255 if the set as a whole never reaches both ends.

    The converter takes the input scale from the calibration range; a set whose darkest pixel is 3 gives
    scale 0.99 and an input the edge would have to requantize. Camera pixels span 0..255, so the range
    calibration should record is that one; stretching one crop's contrast states it with a real face.
    """
    if crops.size == 0 or (crops.min() == 0 and crops.max() == 255):
        return crops
    crops = crops.copy()
    first = crops[0].astype(np.float32)
    low, high = float(first.min()), float(first.max())
    stretched = (first - low) * (255.0 / max(high - low, 1.0))
    crops[0] = np.clip(np.round(stretched), 0, 255).astype(np.uint8)
    crops[0].flat[0], crops[0].flat[1] = 0, 255  # a flat crop cannot be stretched
    log.info("calibration crops did not span 0..255; stretched the first one to anchor the input range")
    return crops


def to_int8_tflite(keras_model, calibration_crops: np.ndarray, batch_size: int = 1) -> bytes:
    """Full-integer TFLite (int8 kernels, uint8 input and output) calibrated on `calibration_crops`.

    `calibration_crops` is (N, S, S, 3) uint8 in the model's colour order, made by the crop contract.
    """
    import tensorflow as tf  # workstation only

    crops = anchor_full_range(np.asarray(calibration_crops, dtype=np.uint8))

    def representative_dataset():
        for start in range(0, len(crops), batch_size):
            yield [crops[start : start + batch_size].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = getattr(tf, INPUT_DTYPE)
    converter.inference_output_type = getattr(tf, OUTPUT_DTYPE)
    with warnings.catch_warnings():
        # Asks for TOCO-era input statistics; the calibrated converter takes the range from the data.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return converter.convert()


def check_io_quantization(input_detail: dict, output_detail: dict) -> None:
    """Raise QuantizationError unless the input is uint8 at exactly scale 1, zero point 0 and the
    output is uint8 probabilities (scale 1/256, zero point 0)."""
    in_dtype, out_dtype = np.dtype(input_detail["dtype"]).name, np.dtype(output_detail["dtype"]).name
    in_scale, in_zero = input_detail["quantization"]
    out_scale, out_zero = output_detail["quantization"]
    if in_dtype != INPUT_DTYPE or in_scale != 1.0 or in_zero != 0:
        raise QuantizationError(
            f"int8 model input is {in_dtype} scale={in_scale} zero_point={in_zero}, expected {INPUT_DTYPE} "
            "scale=1.0 zero_point=0: does the Keras model start with the Rescaling layer, and do the "
            "calibration crops reach 0 and 255?"
        )
    if out_dtype != OUTPUT_DTYPE or abs(out_scale - 1.0 / 256.0) > 1e-9 or out_zero != 0:
        raise QuantizationError(
            f"int8 model output is {out_dtype} scale={out_scale} zero_point={out_zero}, expected "
            f"{OUTPUT_DTYPE} scale=1/256 zero_point=0: does the Keras model end with a softmax?"
        )
