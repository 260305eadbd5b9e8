"""Distillation: the teachers' averaged answers on the student's own batch become part of its targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.workstation]

keras = pytest.importorskip("keras")

from edge.model_metadata import LABELS  # noqa: E402
from train.distill import EnsembleTeacher, TeacherError, soft_targets  # noqa: E402


def _teacher_run(folder: Path, input_size: int, seed: int, labels=LABELS) -> keras.Model:
    """A run folder as train/ writes it, holding a small random classifier of `input_size` px."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((input_size, input_size, 3))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs / 255.0))
    model = keras.Model(inputs, keras.layers.Dense(len(labels), activation="softmax")(features * 3.0))
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    summary = {"labels": list(labels), "preprocess": {"input_size": input_size}}
    (folder / "training_summary.json").write_text(json.dumps(summary))
    return model


def _batch(size: int, n: int = 5) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def test_the_teachers_answer_is_the_geometric_mean_of_their_probabilities(tmp_path):
    first = _teacher_run(tmp_path / "a", 32, seed=1)
    second = _teacher_run(tmp_path / "b", 32, seed=2)
    images = _batch(32)
    teacher = EnsembleTeacher([tmp_path / "a", tmp_path / "b"])
    p, q = (np.asarray(m.predict_on_batch(images.astype(np.float32)), np.float64) for m in (first, second))
    expected = np.sqrt(p * q)
    expected /= expected.sum(axis=1, keepdims=True)
    answer = teacher.probabilities(images)
    assert answer.shape == (5, 3)
    np.testing.assert_allclose(answer, expected, atol=1e-5)
    assert not np.allclose(answer, p, atol=1e-3)  # both teachers count


def test_a_teacher_of_another_input_size_sees_the_batch_resized_to_its_own(tmp_path):
    model = _teacher_run(tmp_path / "big", 48, seed=3)
    images = _batch(32)
    import cv2

    resized = np.stack([cv2.resize(i, (48, 48), interpolation=cv2.INTER_LINEAR) for i in images])
    expected = np.asarray(model.predict_on_batch(resized.astype(np.float32)))
    np.testing.assert_allclose(EnsembleTeacher([tmp_path / "big"]).probabilities(images), expected, atol=1e-5)


def test_a_teacher_with_other_labels_or_no_model_is_refused_by_name(tmp_path):
    _teacher_run(tmp_path / "other", 32, seed=4, labels=("mask", "no_mask", "incorrect"))
    with pytest.raises(TeacherError, match=r"teacher .*other has labels"):
        EnsembleTeacher([tmp_path / "other"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TeacherError, match=r"empty needs model.keras"):
        EnsembleTeacher([tmp_path / "empty"])
    with pytest.raises(TeacherError, match="at least one"):
        EnsembleTeacher([])


def test_the_targets_keep_the_label_and_give_the_teachers_their_share():
    onehot = np.eye(3, dtype=np.float32)[[0, 2]]
    teacher = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8]], np.float32)
    targets = soft_targets(onehot, teacher, 0.5)
    np.testing.assert_allclose(targets, [[0.6, 0.35, 0.05], [0.05, 0.05, 0.9]], atol=1e-6)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(soft_targets(onehot, teacher, 0.0), onehot)
    with pytest.raises(ValueError, match=r"distillation weight must be in \[0, 1\], got 1.5"):
        soft_targets(onehot, teacher, 1.5)


def test_training_batches_mix_the_teachers_answer_on_the_augmented_pixels_the_student_sees(tmp_path):
    from train.augment import AugmentConfig
    from train.crops import FaceArrays
    from train.data import FaceRecord
    from train.fit import AugmentedBatches, FitConfig

    _teacher_run(tmp_path / "t", 32, seed=5)
    teacher = EnsembleTeacher([tmp_path / "t"])
    rng = np.random.default_rng(2)
    records = [
        FaceRecord(f"{i}.jpg", "faces2", LABELS[i % 3], f"g{i}", f"{i}.jpg", face_px=64) for i in range(6)
    ]
    faces = FaceArrays(
        records,
        rng.integers(0, 256, (6, 32, 32, 3)).astype(np.uint8),
        rng.integers(0, 256, (6, 48, 48, 3)).astype(np.uint8),
        np.full(6, 0.7, np.float32),
    )
    config = FitConfig(input_size=32, batch_size=4, distill_weight=0.25)
    weights = np.ones(6, np.float32)
    images, targets, _ = AugmentedBatches(faces, config, AugmentConfig(), weights, teacher)[0]
    _, labels_only, _ = AugmentedBatches(faces, config, AugmentConfig(), weights)[0]
    np.testing.assert_array_equal(labels_only.max(axis=1), 1.0)  # without teachers: one-hot
    expected = 0.75 * labels_only + 0.25 * teacher.probabilities(images.astype(np.uint8))
    np.testing.assert_allclose(targets, expected, atol=1e-5)
