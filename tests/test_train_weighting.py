"""Class weights balance the classes; real worn-wrong faces weigh extra."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.workstation

pytest.importorskip("keras")

from train.crops import FaceArrays  # noqa: E402
from train.data import FaceRecord  # noqa: E402
from train.fit import FitConfig, class_weights, sample_weights  # noqa: E402


def test_class_weights_give_each_class_the_same_total():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    weights = class_weights(labels)
    totals = [weights[c] * np.sum(labels == c) for c in range(3)]
    assert np.allclose(totals, totals[0])


def test_real_worn_wrong_faces_weigh_extra():
    records = [
        FaceRecord("a", "scenes", "mask_weared_incorrect", "g1", "a.jpg"),
        FaceRecord("b", "synthetic_masked", "mask_weared_incorrect", "g2", "b.jpg"),
        FaceRecord("c", "faces2", "with_mask", "g3", "c.jpg"),
    ]
    empty = np.zeros((3, 4, 4, 3), np.uint8)
    faces = FaceArrays(records, empty, empty, np.ones(3, np.float32))
    weights = sample_weights(faces, FitConfig(real_incorrect_weight=3.0))
    assert weights[0] == pytest.approx(3.0 * weights[1])
