"""Lamps drawn into the face verifier's training frames: where they go, and that BlazeFace bites on them.

They exist to give the verifier negatives it never had (a lamp's flare in scikit-image's `rocket` photo
was kept as a face), so the last test checks that the detector really finds candidates on them at the
mining floor: lamps it never fires on would teach the verifier nothing.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from train.point_lights import draw_point_light, draw_point_lights, dusk
from train.verifier_data import _on_lamp

FRAME = (480, 640, 3)


def test_a_lamp_is_brightest_at_its_core_and_fades_beyond_its_reach():
    frame = np.full(FRAME, 20, np.uint8)
    draw_point_light(frame, centre=(320, 240), reach=60, rng=random.Random(0))
    grey = frame.mean(axis=2)
    assert grey[240, 320] > 200  # the core burns out
    assert grey[240, 320] > grey[240, 350] > 20  # halo and spikes fall off from it
    assert np.all(frame[:, :250] == 20) and np.all(frame[:, 391:] == 20)  # nothing past the reach
    assert np.all(frame[:170] == 20) and np.all(frame[311:] == 20)


def test_a_lamp_near_the_frame_edge_is_clipped_not_an_error():
    frame = np.zeros(FRAME, np.uint8)
    draw_point_light(frame, centre=(2, 478), reach=50, rng=random.Random(1))
    assert frame[478, 2].max() > 150
    before = frame.copy()
    draw_point_light(frame, centre=(-200, -200), reach=50, rng=random.Random(1))  # wholly outside: nothing
    assert np.array_equal(frame, before)


@pytest.mark.parametrize("seed", range(5))
def test_lamps_leave_the_faces_they_must_avoid_untouched(seed):
    frame = np.full(FRAME, 50, np.uint8)
    face = (200.0, 150.0, 400.0, 350.0)
    lamps = draw_point_lights(frame, random.Random(seed), avoid=[face], count_range=(5, 5))
    assert lamps, "five lamps fit beside one face"
    assert np.all(frame[150:350, 200:400] == 50)
    assert frame.max() > 200


def test_dusk_darkens_a_frame_and_turns_it_blue():
    day = np.full(FRAME, 200, np.uint8)
    evening = dusk(day, random.Random(0))
    b, g, r = (evening[..., channel].mean() for channel in range(3))
    assert evening.mean() < 0.6 * day.mean()
    assert b > r


def test_a_candidate_holding_a_lamps_centre_is_a_lamp_negative():
    lamps = [(90.0, 90.0, 110.0, 110.0)]  # centre (100, 100)
    boxes = [(80, 80, 130, 130), (200, 200, 260, 260), (101, 50, 160, 99)]
    assert _on_lamp(boxes, lamps).tolist() == [True, False, False]
    assert _on_lamp(boxes, []).tolist() == [False, False, False]
    assert _on_lamp([], lamps).tolist() == []


def test_blazeface_finds_candidates_on_drawn_lamps_at_the_mining_floor():
    from edge.faces import FaceDetector
    from train.verifier_data import MINE_FLOOR, low_floor_faces

    detector, rng = FaceDetector(), random.Random(0)
    found = 0
    for _ in range(12):
        frame = dusk(np.full(FRAME, 120, np.uint8), rng)
        lamps = draw_point_lights(frame, rng, count_range=(3, 5))
        boxes, scores = low_floor_faces(detector, frame)
        assert np.all(scores >= MINE_FLOOR)
        found += int(_on_lamp(boxes, lamps).sum())
    assert found >= 10
