"""Float vs int8: do the two models give the same answers on the validation faces?

Quantization error is not spread evenly: it shows on one class or on small, blurry faces first. So
agreement is reported overall, by true class and by face size, next to each model's own accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.scoring import SIZE_BUCKETS, agreement, classification_report, size_bucket

TARGET_MIN_FACE_PX = 32  # the targets count faces of at least this height


def float_probabilities(keras_model, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The Keras model's probabilities for uint8 crops (fed as float 0..255: it rescales inside)."""
    outputs = [
        np.asarray(keras_model(crops[i : i + batch_size].astype(np.float32), training=False))
        for i in range(0, len(crops), batch_size)
    ]
    return np.concatenate(outputs, axis=0) if outputs else np.zeros((0, 0), np.float32)


def parity_report(
    true_labels: Sequence[str],
    float_probs: np.ndarray,
    int8_probs: np.ndarray,
    face_px: Sequence[float],
    labels: Sequence[str],
) -> dict:
    """Top-1 agreement (overall, by class, by size), probability drift, and both models' accuracy."""
    float_top = [labels[i] for i in np.argmax(float_probs, axis=1)]
    int8_top = [labels[i] for i in np.argmax(int8_probs, axis=1)]
    sizes = [size_bucket(h) for h in face_px]

    def subset(keep: list[int]) -> dict:
        return {
            "n": len(keep),
            "agreement": agreement([float_top[i] for i in keep], [int8_top[i] for i in keep]),
        }

    indices = range(len(true_labels))
    drift = np.abs(np.asarray(float_probs, np.float64) - np.asarray(int8_probs, np.float64))
    return {
        "n": len(true_labels),
        "agreement": agreement(float_top, int8_top),
        "agreement_ge32": subset([i for i in indices if face_px[i] >= TARGET_MIN_FACE_PX])["agreement"],
        "agreement_by_class": {c: subset([i for i in indices if true_labels[i] == c]) for c in labels},
        "agreement_by_size": {s: subset([i for i in indices if sizes[i] == s]) for s, _, _ in SIZE_BUCKETS},
        "max_abs_probability_diff": float(drift.max()) if drift.size else None,
        "mean_abs_probability_diff": float(drift.mean()) if drift.size else None,
        "float": classification_report(true_labels, float_top, labels, face_px=face_px),
        "int8": classification_report(true_labels, int8_top, labels, face_px=face_px),
    }
