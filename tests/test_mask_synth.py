"""The mask synthesizer: masks land where each placement says, for any style, roll and yaw; outputs are sane."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.synth.demo import DEMO_MASK
from edge.synth.geometry import CHIN_Y, MaskOutline, face_frame, keypoints_from_box
from edge.synth.masks import (
    LABEL_INCORRECT,
    LABEL_WITH_MASK,
    LABEL_WITHOUT_MASK,
    PATTERNS,
    PLACEMENTS,
    PLACEMENTS_CORRECT,
    PLACEMENTS_INCORRECT,
    SHAPES,
    MaskStyle,
    draw_mask,
    label_for,
    random_style,
    render_mask,
)
from edge.synth.scene import ASTRONAUT_BOX, ASTRONAUT_KEYPOINTS, astronaut

# What each placement must cover (True), leave bare (False); eyes are never covered.
COVERS = {
    "correct": {"nose": True, "mouth": True, "chin": True},
    "below_nose": {"nose": False, "mouth": True, "chin": True},
    "mouth_only": {"nose": False, "mouth": True, "chin": False},
    "chin_out": {"nose": True, "mouth": True, "chin": False},
    "on_chin": {"nose": False, "mouth": False, "chin": True},
}
CROP_ORIGIN = np.array([100.0, 30.0])  # a 256 px crop of the astronaut around her face, like a training crop


@pytest.fixture(scope="module")
def face():
    """(BGR 256x256 crop, keypoints (6, 2), box) of the astronaut."""
    image = np.ascontiguousarray(astronaut().image[30:286, 100:356])
    keypoints = np.array(ASTRONAUT_KEYPOINTS) - CROP_ORIGIN
    box = tuple(np.array(ASTRONAUT_BOX) - np.tile(CROP_ORIGIN, 2))
    return image, keypoints, box


def landmarks(keypoints, box) -> dict[str, np.ndarray]:
    """Pixel positions to probe: the keypoints plus a chin point (BlazeFace has none) from the face frame."""
    frame = face_frame(keypoints, box)
    chin = frame.face_to_image(frame.centre(CHIN_Y), CHIN_Y)
    return {
        "right_eye": keypoints[0],
        "left_eye": keypoints[1],
        "nose": keypoints[2],
        "mouth": keypoints[3],
        "chin": chin,
    }


def coverage_at(coverage: np.ndarray, point) -> float:
    x, y = (int(round(v)) for v in point)
    return float(coverage[y, x])


def assert_placement(coverage: np.ndarray, keypoints, box, placement: str, context: str) -> None:
    points = landmarks(keypoints, box)
    for name, covered in {**COVERS[placement], "right_eye": False, "left_eye": False}.items():
        value = coverage_at(coverage, points[name])
        if covered:
            assert value > 0.9, f"{context}: {placement} should cover the {name}, coverage {value:.2f}"
        else:
            assert value < 0.1, f"{context}: {placement} should leave the {name} bare, coverage {value:.2f}"


def rotated(image, keypoints, box, degrees: float):
    """The face rolled by `degrees` about its box centre: image, keypoints and the upright box around them."""
    centre = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    turned = cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    points = np.hstack([keypoints, np.ones((6, 1))]) @ matrix.T
    corners = (
        np.array([[box[0], box[1], 1], [box[2], box[1], 1], [box[0], box[3], 1], [box[2], box[3], 1]])
        @ matrix.T
    )
    return turned, points, (*corners.min(axis=0), *corners.max(axis=0))


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_each_placement_covers_what_it_should_for_many_styles(face, placement):
    image, keypoints, box = face
    for seed in range(12):
        drawing = render_mask(image, keypoints, box, placement, np.random.default_rng(seed))
        assert_placement(drawing.coverage, keypoints, box, placement, f"seed {seed}")


@pytest.mark.parametrize("degrees", [-30.0, 20.0])
@pytest.mark.parametrize("placement", ["correct", "below_nose", "on_chin"])
def test_placement_follows_head_roll(face, placement, degrees):
    image, keypoints, box = rotated(*face, degrees)
    for seed in range(4):
        drawing = render_mask(image, keypoints, box, placement, np.random.default_rng(seed))
        assert_placement(drawing.coverage, keypoints, box, placement, f"roll {degrees}, seed {seed}")


def test_turned_head_gets_a_narrow_far_side_and_a_wide_near_side():
    box = (100.0, 100.0, 200.0, 200.0)
    frontal = keypoints_from_box(box)
    turned = frontal.copy()
    turned[2:4, 0] -= 30  # nose and mouth swing towards the subject's right ear: the head turns to its right
    straight, yawed = face_frame(frontal, box), face_frame(turned, box)
    assert straight.half_width_right == pytest.approx(straight.half_width_left, rel=0.05)
    assert yawed.half_width_right < 0.6 * yawed.half_width_left
    image = np.full((300, 300, 3), 128, np.uint8)
    drawing = render_mask(image, turned, box, "correct", np.random.default_rng(0), DEMO_MASK)
    assert_placement(drawing.coverage, turned, box, "correct", "yaw")
    columns = np.flatnonzero(drawing.coverage.max(axis=0) > 0.5)
    nose_x = turned[2, 0]
    assert nose_x - columns.min() < columns.max() - nose_x  # less mask on the far (turned away) side


def test_mask_changes_pixels_only_around_the_face(face):
    image, keypoints, box = face
    out = draw_mask(image, keypoints, box, "correct", np.random.default_rng(0), DEMO_MASK)
    x, y = (int(v) for v in keypoints[3])
    mouth_change = np.abs(
        out[y - 3 : y + 4, x - 3 : x + 4].astype(int) - image[y - 3 : y + 4, x - 3 : x + 4]
    ).mean()
    assert mouth_change > 30
    assert np.array_equal(out[:40], image[:40])  # above the eyes: untouched
    blue, red = out[y - 3 : y + 4, x - 3 : x + 4, 0].mean(), out[y - 3 : y + 4, x - 3 : x + 4, 2].mean()
    assert blue > red + 30  # a light-blue mask in a BGR image


def test_output_keeps_shape_and_dtype_and_leaves_the_input_alone(face):
    image, keypoints, box = face
    before = image.copy()
    out = draw_mask(image, keypoints, box, "below_nose", np.random.default_rng(1))
    assert out.shape == image.shape and out.dtype == np.uint8 and out is not image
    assert np.array_equal(image, before)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    grey_out = draw_mask(grey, keypoints, box, "correct", np.random.default_rng(1))
    assert grey_out.shape == grey.shape and grey_out.dtype == np.uint8
    assert not np.array_equal(grey_out, grey)


def test_colour_order_gives_the_same_mask_in_rgb_and_bgr(face):
    image, keypoints, box = face
    bgr = draw_mask(image, keypoints, box, "correct", np.random.default_rng(5), color_order="BGR")
    rgb = draw_mask(
        image[:, :, ::-1].copy(), keypoints, box, "correct", np.random.default_rng(5), color_order="RGB"
    )
    assert np.abs(rgb[:, :, ::-1].astype(int) - bgr).max() <= 1


def test_same_seed_same_mask_other_seed_other_mask(face):
    image, keypoints, box = face
    first = draw_mask(image, keypoints, box, "correct", np.random.default_rng(42))
    again = draw_mask(image, keypoints, box, "correct", np.random.default_rng(42))
    other = draw_mask(image, keypoints, box, "correct", np.random.default_rng(43))
    assert np.array_equal(first, again)
    assert np.abs(first.astype(int) - other).mean() > 1.0


def test_random_styles_cover_every_shape_pattern_and_many_colours():
    styles = [random_style(np.random.default_rng(seed)) for seed in range(300)]
    assert {s.shape for s in styles} == set(SHAPES)
    assert {s.pattern for s in styles} == set(PATTERNS)
    assert len({s.color for s in styles}) > 200
    assert any(s.ear_loops for s in styles) and not all(s.ear_loops for s in styles)
    assert any(s.valve for s in styles) and any(s.pleats for s in styles) and any(s.seam for s in styles)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_shape_and_pattern_draws_a_correct_mask(face, shape, pattern):
    image, keypoints, box = face
    style = MaskStyle(shape=shape, pattern=pattern, valve=shape in ("kn95", "n95"), seam=True)
    drawing = render_mask(image, keypoints, box, "correct", np.random.default_rng(0), style)
    assert_placement(drawing.coverage, keypoints, box, "correct", f"{shape}/{pattern}")


def test_mask_at_the_frame_edge_and_off_frame_does_not_fail(face):
    image, keypoints, box = face
    shifted = keypoints + [-150.0, 0.0]  # most of the face outside the image on the left
    out = draw_mask(
        image, shifted, tuple(np.array(box) - [150, 0, 150, 0]), "correct", np.random.default_rng(0)
    )
    assert out.shape == image.shape
    gone = keypoints + [-1000.0, 0.0]
    drawing = render_mask(
        image, gone, tuple(np.array(box) - [1000, 0, 1000, 0]), "correct", np.random.default_rng(0)
    )
    assert np.array_equal(drawing.image, image) and drawing.coverage.max() == 0


def test_box_only_faces_get_a_mask_over_nose_and_mouth():
    image = np.full((200, 200, 3), 90, np.uint8)
    box = (50.0, 40.0, 150.0, 140.0)
    drawing = render_mask(image, None, box, "correct", np.random.default_rng(0))
    assert_placement(drawing.coverage, keypoints_from_box(box), box, "correct", "box only")


def test_bad_arguments_are_errors_that_say_what_is_allowed(face):
    image, keypoints, box = face
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="placement must be one of"):
        draw_mask(image, keypoints, box, "on_forehead", rng)
    with pytest.raises(ValueError, match="uint8"):
        draw_mask(image.astype(np.float32), keypoints, box, "correct", rng)
    with pytest.raises(ValueError, match="6 \\(x, y\\) points"):
        draw_mask(image, keypoints[:5], box, "correct", rng)
    with pytest.raises(ValueError, match="color_order"):
        draw_mask(image, keypoints, box, "correct", rng, color_order="HSV")


def test_labels_of_placements():
    assert label_for(None) == LABEL_WITHOUT_MASK
    assert [label_for(p) for p in PLACEMENTS_CORRECT] == [LABEL_WITH_MASK]
    assert {label_for(p) for p in PLACEMENTS_INCORRECT} == {LABEL_INCORRECT}
    with pytest.raises(ValueError):
        label_for("chin_strap")


def test_face_frame_measures_in_eye_to_mouth_units_and_inverts():
    keypoints = np.array(ASTRONAUT_KEYPOINTS)
    frame = face_frame(keypoints, ASTRONAUT_BOX)
    mouth_a, mouth_b = frame.image_to_face(keypoints[3, 0], keypoints[3, 1])
    assert mouth_b == pytest.approx(1.0)
    assert frame.unit == pytest.approx(np.dot(keypoints[3] - (keypoints[0] + keypoints[1]) / 2, frame.v))
    t = np.array([-0.8, -0.2, 0.0, 0.5, 1.0])
    y = np.array([0.3, 0.9, 1.2, 1.5, 1.8])
    pixels = frame.mask_to_image(t, y, width_scale=0.9, shift=0.03)
    back_t, back_y = frame.image_to_mask(pixels[:, 0], pixels[:, 1], width_scale=0.9, shift=0.03)
    np.testing.assert_allclose(back_t, t, atol=1e-9)
    np.testing.assert_allclose(back_y, y, atol=1e-9)


def test_outline_moves_and_squeezes_to_a_new_height():
    outline = MaskOutline(0.3, 0.2, 1.0, 1.9, 0.5, 2.0)
    moved = outline.moved(1.2, 2.0)
    assert moved.top(np.array([0.0]))[0] == pytest.approx(1.2)
    assert moved.bottom(np.array([0.0]))[0] == pytest.approx(2.0)
    assert moved.top_rise == pytest.approx(0.2 * 0.8 / 1.6)
    polygon = moved.polygon(10)
    assert polygon.shape == (20, 2) and polygon[:, 1].min() >= 1.2 - 1e-9


@pytest.mark.parametrize("nose_y", [0.28, 0.72])
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_nose_tip_is_in_or_out_wherever_the_detector_puts_it(placement, nose_y):
    """A face looking up or down moves the nose tip from 0.3 to 0.7 units below the eyes (faces2 and
    scene faces); a correct mask must still cover it and a worn-wrong one leave it bare."""
    box = (100.0, 100.0, 200.0, 200.0)
    keypoints = keypoints_from_box(box)
    eye_y, mouth_y = keypoints[0, 1], keypoints[3, 1]
    keypoints[2, 1] = eye_y + nose_y * (mouth_y - eye_y)
    image = np.full((300, 300, 3), 128, np.uint8)
    for seed in range(30):
        drawing = render_mask(image, keypoints, box, placement, np.random.default_rng(seed))
        assert_placement(drawing.coverage, keypoints, box, placement, f"nose at {nose_y}, seed {seed}")
