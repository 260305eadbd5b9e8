"""Teachers for distillation: trained runs whose averaged predictions become part of the student's targets.

Averaging the predictions of several runs (an ensemble) was the one way of combining runs that
generalized better to a source held out of training (models/MODEL_CARD.md, "Averaged weights and
averaged predictions"), but each member costs a classifier run per face on the Pi. Distillation asks one
student to learn the ensemble's answers instead. The teachers see the same augmented batch as the student
(a patient, consistent teacher), so their answers cover the crops the student is trained on, not only the
clean ones; their runs' label order is checked against ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edge.model_metadata import LABELS


class TeacherError(ValueError):
    """A teacher run that cannot teach this student (missing files, other labels)."""


class EnsembleTeacher:
    """The geometric mean of several trained runs' class probabilities (log-probabilities averaged)."""

    def __init__(self, runs: list[Path]):
        import keras

        if not runs:
            raise TeacherError("distillation needs at least one teacher run")
        self.runs = list(runs)
        self.models, self.input_sizes = [], []
        for run in self.runs:
            summary_path, model_path = run / "training_summary.json", run / "model.keras"
            if not summary_path.is_file() or not model_path.is_file():
                raise TeacherError(
                    f"teacher {run} needs model.keras and training_summary.json (a train/ run)"
                )
            summary = json.loads(summary_path.read_text())
            if summary.get("labels") != list(LABELS):
                raise TeacherError(
                    f"teacher {run} has labels {summary.get('labels')}, the student {list(LABELS)}"
                )
            self.models.append(keras.models.load_model(model_path, compile=False))
            self.input_sizes.append(int(summary["preprocess"]["input_size"]))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 3) float32 probabilities for a batch of 0..255 RGB crops of any one size."""
        log_sum = np.zeros((len(images), len(LABELS)), np.float64)
        for model, size in zip(self.models, self.input_sizes, strict=True):
            batch = images if images.shape[1] == size else _resized(images, size)
            predicted = np.asarray(model.predict_on_batch(batch.astype(np.float32)), np.float64)
            log_sum += np.log(np.clip(predicted, 1e-7, 1.0))
        mean = np.exp(log_sum / len(self.models))
        return (mean / mean.sum(axis=1, keepdims=True)).astype(np.float32)


def _resized(images: np.ndarray, size: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if images.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(image, (size, size), interpolation=interpolation) for image in images])


def soft_targets(onehot: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """The student's targets: the label and the teachers' answer mixed, `weight` for the teachers.

    The label keeps a share so that a face every teacher gets wrong still pulls the student the right way.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"distillation weight must be in [0, 1], got {weight}")
    return ((1.0 - weight) * onehot + weight * teacher).astype(np.float32)
