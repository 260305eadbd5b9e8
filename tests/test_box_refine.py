"""Box refinement: BlazeFace's box moved to the VOC scenes' convention, from its keypoints.

The mapping is pure numpy (edge/box_refine.py), fitted by train/box_refinement.py; the detector applies
the shipped parameters as its last step. These tests check the arithmetic on plain numbers, the fit on
a mapping we know, the parameters file's checks, and the detector on the astronaut photo.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from edge.box_refine import (
    FEATURES,
    REFINE_COMMAND,
    TARGETS,
    BoxRefinement,
    BoxRefinementMissingError,
    box_refinement_path,
    deltas,
    features,
    moved,
)
from edge.config import ConfigError, DetectorConfig, parse_config
from edge.faces import FaceDetector
from edge.model_metadata import ModelMetadataError
from tests.test_faces import ASTRONAUT_FACE, astronaut_in_frame, drifting
from train.box_refinement import fit

COMMAND = REFINE_COMMAND.replace(".", r"\.")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()  # RGB


def random_faces(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (32-300 px, roughly square) and keypoints scattered inside them."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(32, 300, count)
    x1, y1 = rng.uniform(0, 300, count), rng.uniform(0, 200, count)
    boxes = np.stack([x1, y1, x1 + size * rng.uniform(0.8, 1.2, count), y1 + size], axis=1)
    where = rng.uniform(0.1, 0.9, (count, 6, 2))
    keypoints = boxes[:, None, :2] + where * (boxes[:, None, 2:] - boxes[:, None, :2])
    return boxes, keypoints


def mirror_boxes(boxes: np.ndarray, width: float) -> np.ndarray:
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


# --- the arithmetic ---------------------------------------------------------------------------------


def test_moved_undoes_deltas():
    boxes, _ = random_faces(20)
    targets, _ = random_faces(20, seed=1)
    assert np.allclose(moved(boxes, deltas(boxes, targets)), targets)


def test_identity_parameters_leave_boxes_unchanged():
    boxes, keypoints = random_faces(10)
    assert np.allclose(BoxRefinement.identity().refine(boxes, keypoints), boxes, atol=1e-3)


def test_a_refinement_moves_a_box_down_and_makes_it_taller_by_its_constant():
    down_and_taller = BoxRefinement.identity()
    down_and_taller.weights[FEATURES.index("constant")] = [0.0, 0.1, 0.0, np.log(1.2)]
    refined = BoxRefinement(down_and_taller.weights, [-1.0] * 4, [1.0] * 4).refine(
        np.array([[100.0, 100.0, 200.0, 200.0]]), np.full((1, 6, 2), 150.0)
    )
    assert np.allclose(refined, [[100.0, 100.0, 200.0, 220.0]], atol=1e-3)  # centre 10 px lower, 120 tall


def test_predictions_stay_inside_the_fitted_range():
    weights = BoxRefinement.identity().weights
    weights[FEATURES.index("constant")] = [0.0, 5.0, 0.0, 0.0]  # five box heights down ...
    refinement = BoxRefinement(weights, [0.0, -0.1, 0.0, 0.0], [0.0, 0.1, 0.0, 0.0])  # ... at most 0.1
    refined = refinement.refine(np.array([[100.0, 100.0, 200.0, 200.0]]), np.full((1, 6, 2), 150.0))
    assert np.allclose(refined, [[100.0, 110.0, 200.0, 210.0]], atol=1e-3)


def test_a_side_that_would_leave_the_frame_stays_where_it_was():
    weights = BoxRefinement.identity().weights
    weights[FEATURES.index("constant")] = [0.0, 0.2, 0.0, 0.0]  # 20% of the height down
    refinement = BoxRefinement(weights, [-1.0] * 4, [1.0] * 4)
    near_the_bottom = np.array([[100.0, 370.0, 200.0, 470.0]])  # in a 640x480 frame
    refined = refinement.refine(near_the_bottom, np.full((1, 6, 2), 420.0), (640, 480))
    # the top moves down; the bottom would land at 490, below the frame, so it stays at 470
    assert np.allclose(refined, [[100.0, 390.0, 200.0, 470.0]], atol=1e-3)


# --- the fit ----------------------------------------------------------------------------------------


def test_the_fit_recovers_a_known_mapping():
    boxes, keypoints = random_faces(400)
    known = np.random.default_rng(2).normal(0.0, 0.05, (len(FEATURES), len(TARGETS)))
    truth = moved(boxes, features(boxes, keypoints) @ known)
    fitted = fit(boxes, keypoints, truth, ridge=0.0, mirror=False)
    assert np.allclose(fitted.weights, known, atol=1e-5)
    assert np.allclose(fitted.refine(boxes, keypoints), truth, atol=0.01)


def test_a_mirrored_fit_treats_a_face_turned_left_like_one_turned_right():
    boxes, keypoints = random_faces(300)
    rng = np.random.default_rng(3)
    truth = moved(boxes, rng.normal(0.0, 0.05, (len(boxes), 4)))  # any annotator, even a lopsided one
    refinement = fit(boxes, keypoints, truth)
    width = 640.0
    # the mirror image written out here, not taken from the code under test: x -> width - x, the box's
    # left and right edges swap, and so do the eyes (keypoints 0, 1) and the ears (4, 5)
    flipped_boxes = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    flipped_keypoints = keypoints[:, [1, 0, 2, 3, 5, 4]].copy()
    flipped_keypoints[..., 0] = width - flipped_keypoints[..., 0]
    assert np.allclose(
        refinement.refine(flipped_boxes, flipped_keypoints),
        mirror_boxes(refinement.refine(boxes, keypoints), width),
        atol=1e-2,
    )


# --- the parameters file ----------------------------------------------------------------------------


def test_the_shipped_parameters_load_and_say_what_they_were_fitted_on():
    refinement = BoxRefinement.load()
    fitted = refinement.fitted
    assert "'train' half" in fitted["data"] and fitted["command"].startswith(REFINE_COMMAND)
    assert fitted["pairs"] > 300 and fitted["mirrored"]
    assert fitted["mean_iou_on_the_pairs"]["after"] > fitted["mean_iou_on_the_pairs"]["before"]


def test_the_parameters_survive_a_round_trip(tmp_path):
    path = tmp_path / "box_refinement.json"
    path.write_text(BoxRefinement.load().to_json())
    boxes, keypoints = random_faces(10)
    assert np.allclose(
        BoxRefinement.load(path).refine(boxes, keypoints), BoxRefinement.load().refine(boxes, keypoints)
    )


def test_a_missing_file_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(BoxRefinementMissingError, match=COMMAND):
        BoxRefinement.load(tmp_path / "box_refinement.json")


def test_a_missing_file_is_an_error_for_the_detector_too(tmp_path, monkeypatch):
    from edge.paths import detector_dir

    blazeface_dir = detector_dir()  # the BlazeFace models stay where they are
    monkeypatch.setenv("MASKWATCH_MODELS_DIR", str(tmp_path))
    with pytest.raises(BoxRefinementMissingError, match="detector.box_refinement: false"):
        FaceDetector(DetectorConfig(verifier=False), models_dir=blazeface_dir)
    FaceDetector(DetectorConfig(verifier=False, box_refinement=False), models_dir=blazeface_dir)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="something else"), "not a box refinement file"),
        (lambda d: d.update(format_version=2), "format_version 2"),
        (lambda d: d["feature_names"].reverse(), "other features"),
        (lambda d: d["weights"].pop(), "weights must be 20x4"),
        (lambda d: d["delta_min"].pop(), "weights must be 20x4"),
        (lambda d: d["weights"][0].__setitem__(0, "a lot"), "malformed"),
        (lambda d: d.update(delta_min=[1.0] * 4), "min > max"),
        (lambda d: d.pop("weights"), "malformed"),
    ],
)
def test_a_malformed_file_is_a_clear_error_naming_the_command(tmp_path, edit, message):
    data = json.loads(box_refinement_path().read_text())
    edit(data)
    path = tmp_path / "box_refinement.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelMetadataError, match=message) as raised:
        BoxRefinement.load(path)
    assert REFINE_COMMAND in str(raised.value)


def test_a_file_that_is_not_json_is_a_clear_error(tmp_path):
    path = tmp_path / "box_refinement.json"
    path.write_text("{ not json")
    with pytest.raises(ModelMetadataError, match=f"not valid JSON.*{COMMAND}"):
        BoxRefinement.load(path)


def test_the_provenance_names_the_scenes_fitted_on():
    from train.box_refinement import _data_note

    assert "the 'train' half" in _data_note(Path("scenes"), "train")
    assert "the 'eval' half was not used" in _data_note(Path("scenes"), "train")
    assert "the 'train' half was not used" in _data_note(Path("scenes"), "eval")
    assert "every scene" in _data_note(Path("scenes"), "all")


def test_the_config_key_is_checked():
    assert DetectorConfig().box_refinement is True
    with pytest.raises(ConfigError, match="detector.box_refinement: expected true or false"):
        parse_config({"detector": {"box_refinement": "yes"}})


# --- in the detector --------------------------------------------------------------------------------


def test_the_refined_astronaut_box_reaches_below_her_chin(astronaut):
    raw = FaceDetector(DetectorConfig(box_refinement=False)).detect(astronaut, "RGB")[0]
    refined = FaceDetector().detect(astronaut, "RGB")[0]
    chin, height = ASTRONAUT_FACE[3], ASTRONAUT_FACE[3] - ASTRONAUT_FACE[1]
    assert raw.box[3] < chin + 0.02 * height  # BlazeFace's box ends at the chin ...
    assert refined.box[3] > chin + 0.05 * height  # ... the scenes' annotators draw below it
    eyes_y = max(raw.keypoints[0][1], raw.keypoints[1][1])
    assert refined.box[1] < eyes_y - 0.2 * height  # the top still holds the brows
    assert refined.keypoints == raw.keypoints and refined.score == raw.score


def test_identity_parameters_in_the_detector_give_blazefaces_own_boxes(astronaut):
    raw = FaceDetector(DetectorConfig(box_refinement=False)).detect(astronaut, "RGB")
    detector = FaceDetector()
    detector.refinement = BoxRefinement.identity()
    assert np.allclose([f.box for f in detector.detect(astronaut, "RGB")], [f.box for f in raw], atol=1e-3)


def test_the_verifier_bench_detects_with_the_refinement_file_it_is_given(astronaut, tmp_path):
    from bench.verifier_eval import detector_with
    from edge.verifier import verifier_model_path

    path = tmp_path / "box_refinement.json"
    path.write_text(BoxRefinement.identity().to_json())
    raw = FaceDetector(DetectorConfig(box_refinement=False)).detect(astronaut, "RGB")
    given = detector_with(DetectorConfig(), verifier_model_path(), path).detect(astronaut, "RGB")
    shipped = detector_with(DetectorConfig(), verifier_model_path()).detect(astronaut, "RGB")
    assert np.allclose([f.box for f in given], [f.box for f in raw], atol=1e-3)
    assert not np.allclose([f.box for f in shipped], [f.box for f in raw], atol=1.0)


def test_a_face_at_the_bottom_of_the_frame_is_not_pushed_onto_its_border(astronaut):
    frame, expected = astronaut_in_frame(astronaut, 200, at=(0.5, 0.76))  # chin 8 px above the bottom
    (face,) = FaceDetector().detect(frame, "RGB")
    assert expected[3] < 480 and face.box[3] <= 480 - 4  # not taken for a face cut off by the frame
    assert min(face.box) >= 0 and face.box[2] <= 640


def test_a_stream_remembers_blazefaces_boxes_and_reports_refined_ones(astronaut):
    raw_stream = FaceDetector(DetectorConfig(fine_every=3, box_refinement=False), stream=True)
    stream, refinement = FaceDetector(DetectorConfig(fine_every=3), stream=True), BoxRefinement.load()
    for frame, _ in drifting(astronaut, 48, 6):  # 48 px: followed in windows between whole searches
        (raw,), (found,) = raw_stream.detect(frame, "RGB"), stream.detect(frame, "RGB")
        # the refinement changes nothing of what the stream searches: the same face, then refined
        assert np.allclose(found.box, refinement.refine([raw.box], [raw.keypoints], (640, 480))[0], atol=1e-3)
        assert np.allclose([box for box, _ in stream._followed], [raw.box], atol=1e-3)
