"""The held-out report scores a run's unseen faces the way the shipped model would call them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")  # train/ is workstation code (train.run imports the fit)

from edge.model_metadata import LABELS  # noqa: E402
from train.held_out_report import HeldOutFaces, alarm_numbers, main, with_offsets  # noqa: E402

WITH, WITHOUT, INCORRECT = (LABELS.index(n) for n in ("with_mask", "without_mask", "mask_weared_incorrect"))


def probabilities(rows: list[dict[str, float]]) -> np.ndarray:
    return np.array([[row.get(label, 0.0) for label in LABELS] for row in rows], np.float32)


def test_a_negative_offset_on_worn_wrong_moves_a_close_call_to_the_runner_up():
    close = probabilities([{"mask_weared_incorrect": 0.5, "with_mask": 0.3, "without_mask": 0.2}])
    sure = probabilities([{"mask_weared_incorrect": 0.9, "with_mask": 0.05, "without_mask": 0.05}])
    assert with_offsets(close, {}).tolist() == [INCORRECT]
    assert with_offsets(close, {"mask_weared_incorrect": -1.0}).tolist() == [WITH]  # 0.5/e < 0.3
    assert with_offsets(sure, {"mask_weared_incorrect": -1.0}).tolist() == [INCORRECT]


def test_alarm_numbers_count_violators_false_alarms_and_worn_wrong_by_face_size():
    labels = np.array([WITH, WITH, WITH, WITHOUT, WITHOUT, INCORRECT, INCORRECT, INCORRECT])
    face_px = np.array([40, 40, 20, 40, 40, 40, 40, 20])
    predicted = np.array([WITH, INCORRECT, WITHOUT, WITHOUT, WITH, INCORRECT, WITH, INCORRECT])
    numbers = alarm_numbers(HeldOutFaces(labels, face_px), predicted)
    ge32, every = numbers["ge32"], numbers["all"]
    assert ge32["n"] == 6 and ge32["incorrect_n"] == 2
    assert ge32["incorrect_precision"] == 0.5  # one right of the two >= 32 px called worn-wrong
    assert ge32["incorrect_recall"] == 0.5
    assert ge32["violator_recall"] == 2 / 4  # the unmasked face called without, the worn-wrong found
    assert ge32["masked_flagged"] == 1 / 2
    assert ge32["with_vs_without"] == 2 / 4  # a worn-wrong call on a masked face counts as unmasked
    assert every["incorrect_recall"] == 2 / 3 and every["masked_flagged"] == 2 / 3


def test_no_worn_wrong_call_gives_no_precision_rather_than_zero():
    faces = HeldOutFaces(np.array([INCORRECT, WITH]), np.array([64, 64]))
    numbers = alarm_numbers(faces, np.array([WITH, WITH]))
    assert numbers["ge32"]["incorrect_precision"] is None
    assert numbers["ge32"]["incorrect_recall"] == 0.0


def write_run(run: Path, labels: list[str], face_px: list[int], probs: np.ndarray) -> Path:
    (run / "held_out").mkdir(parents=True)
    rows = [{"label": label, "face_px": px} for label, px in zip(labels, face_px, strict=True)]
    (run / "held_out" / "records.json").write_text(json.dumps(rows))
    np.save(run / "held_out" / "probabilities.npy", probs)
    return run


def test_the_command_prints_one_json_object_per_run_with_the_offset_applied(tmp_path, capsys):
    probs = probabilities(
        [
            {"with_mask": 0.3, "mask_weared_incorrect": 0.5, "without_mask": 0.2},
            {"with_mask": 0.9, "without_mask": 0.1},
        ]
    )
    run = write_run(tmp_path / "seed0", ["with_mask", "with_mask"], [50, 50], probs)
    assert main([str(run), "--json"]) == 0
    assert main([str(run), "--json", "--logit-offset", "mask_weared_incorrect=-1"]) == 0
    plain, offset = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert plain["ge32"]["masked_flagged"] == 0.5
    assert offset["ge32"]["masked_flagged"] == 0.0 and offset["logit_offsets"] == {
        "mask_weared_incorrect": -1.0
    }


def test_a_run_whose_faces_and_probabilities_disagree_is_refused(tmp_path, capsys):
    run = write_run(tmp_path / "r", ["with_mask"], [50], probabilities([{"with_mask": 1.0}] * 2))
    assert main([str(run)]) == 2
    assert "1 faces but 2 probabilities" in capsys.readouterr().err


def test_an_unknown_label_in_an_offset_is_a_usage_error(tmp_path):
    run = write_run(tmp_path / "r", ["with_mask"], [50], probabilities([{"with_mask": 1.0}]))
    with pytest.raises(SystemExit):
        main([str(run), "--logit-offset", "masked=-1"])


def red_means_masked_run(
    tmp_path: Path, face: tuple[int, int, int, int] = (60, 40, 100, 80)
) -> tuple[Path, Path]:
    """A run whose "model" calls a crop masked when it is mostly red, and one held-out face: a red
    box on blue (a square by default), so only a crop much looser than the box shows mostly blue."""
    import cv2
    import keras

    from edge.preprocess import PreprocessSpec

    data = tmp_path / "data"
    data.mkdir()
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, :] = (255, 0, 0)  # blue (BGR)
    x1, y1, x2, y2 = face
    frame[y1:y2, x1:x2] = (0, 0, 255)  # the red "face"
    cv2.imwrite(str(data / "s.png"), frame)
    inputs = keras.Input((32, 32, 3))
    dense = keras.layers.Dense(3)
    model = keras.Model(inputs, keras.layers.Softmax()(dense(keras.layers.GlobalAveragePooling2D()(inputs))))
    weights = np.zeros((3, 3), np.float32)
    weights[0, WITH] = weights[2, WITHOUT] = 1 / 25.5  # RGB input: red -> with_mask, blue -> without_mask
    dense.set_weights([weights, np.array([-5.0, -5.0, -5.0], np.float32)])
    run = tmp_path / "run"
    (run / "held_out").mkdir(parents=True)
    model.save(run / "model.keras")
    summary = {
        "preprocess": PreprocessSpec(input_size=32).to_dict(),
        "held_out": {"sources": ["scenes"], "faces": 1},
    }
    (run / "training_summary.json").write_text(json.dumps(summary))
    row = {"key": "s.png#0", "source": "scenes", "label": "with_mask", "group": "g", "image": "s.png",
           "box": list(face), "face_px": y2 - y1, "placement": None}  # fmt: skip
    (run / "held_out" / "records.json").write_text(json.dumps([row]))
    np.save(run / "held_out" / "probabilities.npy", probabilities([{"with_mask": 1.0}]))
    return run, data


def test_crop_margin_recrops_the_faces_and_asks_the_runs_model(tmp_path, capsys):
    run, data = red_means_masked_run(tmp_path)
    for margin in ("0", "1.0"):
        assert main([str(run), "--data", str(data), "--json", "--crop-margin", margin]) == 0
    tight, loose = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert tight["crop"] == "margin 0" and tight["ge32"]["masked_flagged"] == 0.0  # all red: masked
    assert loose["crop"] == "margin 1" and loose["ge32"]["masked_flagged"] == 1.0  # a third as wide: blue


def test_box_cut_scores_each_face_cut_at_its_box_and_stretched_as_evaluate_scores_a_crop_dataset(
    tmp_path, capsys
):
    run, data = red_means_masked_run(tmp_path, face=(70, 40, 86, 80))  # 16 px wide, 40 tall
    assert main([str(run), "--data", str(data), "--json", "--box-cut"]) == 0
    assert main([str(run), "--data", str(data), "--json", "--crop-margin", "0"]) == 0
    cut, square = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert cut["crop"] == "box cut" and cut["ge32"]["masked_flagged"] == 0.0  # only the red box
    assert square["crop"] == "margin 0" and square["ge32"]["masked_flagged"] == 1.0  # 40 px square: blue


def test_box_cut_and_a_crop_margin_together_are_a_usage_error(tmp_path):
    run, data = red_means_masked_run(tmp_path)
    with pytest.raises(SystemExit):
        main([str(run), "--data", str(data), "--box-cut", "--crop-margin", "0.5"])
