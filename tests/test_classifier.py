"""MaskClassifier on real .tflite files: the committed colour model (known answers) and the shipped model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge import paths
from edge.classifier import BatchInvoker, ClassifierModelMissingError, MaskClassifier, Prediction
from edge.model_metadata import LABELS, ModelMetadataError
from tests.color_model import FIXTURE, RGB_OF_LABEL, color_image


@pytest.fixture(scope="module")
def classifier() -> MaskClassifier:
    return MaskClassifier(FIXTURE, threads=1)


def _frame_with_faces(labels: list[str]) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A grey BGR frame with one coloured 60x60 'face' per label, side by side."""
    frame = np.full((120, 80 * len(labels), 3), 128, np.uint8)
    boxes = []
    for i, label in enumerate(labels):
        x = 80 * i + 10
        frame[30:90, x : x + 60] = color_image(label, 60, 60, seed=i)
        boxes.append((x + 6, 36, x + 54, 84))  # the 20% margin stays inside the coloured patch
    return frame, boxes


def test_loads_labels_and_spec_from_the_sidecar(classifier):
    assert classifier.labels == list(LABELS)
    assert classifier.spec.input_size == 24
    assert classifier.metadata.model_version == "color-test"


def test_classify_returns_one_prediction_per_box_in_order(classifier):
    labels = ["without_mask", "with_mask", "mask_weared_incorrect", "with_mask", "without_mask", "with_mask"]
    frame, boxes = _frame_with_faces(labels)
    predictions = classifier.classify(frame, boxes)
    assert [p.label for p in predictions] == labels
    for prediction in predictions:
        assert isinstance(prediction, Prediction)
        assert prediction.score == max(prediction.scores.values()) > 0.9
        assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=0.02)


def test_frame_order_is_honoured(classifier):
    frame, boxes = _frame_with_faces(["with_mask"])  # red in BGR
    assert classifier.classify(frame, boxes, frame_order="BGR")[0].label == "with_mask"
    assert classifier.classify(frame[:, :, ::-1].copy(), boxes, frame_order="RGB")[0].label == "with_mask"
    # the same BGR pixels read as RGB are blue: a swapped order must change the answer
    assert classifier.classify(frame, boxes, frame_order="RGB")[0].label == "mask_weared_incorrect"


def test_boxes_may_be_objects_with_a_box(classifier):
    class Face:
        def __init__(self, box):
            self.box = box

    frame, boxes = _frame_with_faces(["without_mask"])
    assert classifier.classify(frame, [Face(boxes[0])])[0].label == "without_mask"
    assert classifier.classify(frame, []) == []


def test_classify_crops_probabilities_and_shape_check(classifier):
    crops = np.stack([np.full((24, 24, 3), RGB_OF_LABEL[label], np.uint8) for label in LABELS])
    probabilities = classifier.classify_crops(crops)
    assert probabilities.shape == (3, 3) and probabilities.dtype == np.float32
    assert np.argmax(probabilities, axis=1).tolist() == [0, 1, 2]
    assert classifier.classify_crops(np.zeros((0, 24, 24, 3), np.uint8)).shape == (0, 3)
    with pytest.raises(ValueError, match="24, 24, 3"):
        classifier.classify_crops(np.zeros((1, 32, 32, 3), np.uint8))


def test_batched_and_one_by_one_give_the_same_scores(classifier):
    frame, boxes = _frame_with_faces(["with_mask", "without_mask", "mask_weared_incorrect"] * 4)
    one_by_one = MaskClassifier(FIXTURE, threads=1, batching=False)
    assert [p.scores for p in classifier.classify(frame, boxes)] == [
        p.scores for p in one_by_one.classify(frame, boxes)
    ]


def test_batch_interpreters_are_cached_and_bounded():
    invoker = BatchInvoker(FIXTURE, threads=1, max_batch=4, cached_batch_sizes=2)
    crops = np.zeros((3, 24, 24, 3), np.uint8)
    invoker.run(crops)
    first = invoker._interpreter_for(3)
    assert invoker._interpreter_for(3) is first  # not re-allocated for the next frame
    invoker.run(crops[:2])
    invoker.run(np.zeros((4, 24, 24, 3), np.uint8))
    assert sorted(invoker._batched) == [2, 4]  # least recently used size dropped
    assert invoker.run(np.zeros((10, 24, 24, 3), np.uint8)).shape == (10, 3)  # chunks of max_batch


def test_falls_back_to_one_by_one_when_resizing_fails(monkeypatch, caplog):
    invoker = BatchInvoker(FIXTURE, threads=1)
    expected = np.concatenate([invoker.run(np.full((1, 24, 24, 3), v, np.uint8)) for v in (0, 90, 200)])

    def refuse(batch):
        if batch != 1:
            raise RuntimeError("cannot resize")

    monkeypatch.setattr(invoker, "_new_interpreter", refuse)
    crops = np.stack([np.full((24, 24, 3), v, np.uint8) for v in (0, 90, 200)] * 4)  # two chunks of 8 and 4
    assert np.array_equal(invoker.run(crops), np.concatenate([expected] * 4))
    assert not invoker.batching
    assert np.array_equal(invoker.run(crops), np.concatenate([expected] * 4))  # and later frames too
    assert "one by one" in caplog.text


def test_missing_model_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(ClassifierModelMissingError, match="nope.tflite.*python -m convert"):
        MaskClassifier(tmp_path / "nope.tflite")
    with pytest.raises(FileNotFoundError):  # callers may catch the builtin
        MaskClassifier(tmp_path / "nope.tflite")


def test_default_path_is_the_shipped_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKWATCH_MODELS_DIR", str(tmp_path))
    with pytest.raises(ClassifierModelMissingError, match=str(tmp_path / "mask_classifier.tflite")):
        MaskClassifier()


def test_missing_sidecar_is_an_error(tmp_path):
    shutil.copyfile(FIXTURE, tmp_path / "model.tflite")
    with pytest.raises(ModelMetadataError, match="missing"):
        MaskClassifier(tmp_path / "model.tflite")


def _copy_with_sidecar(tmp_path: Path, **changes) -> Path:
    model = tmp_path / "model.tflite"
    shutil.copyfile(FIXTURE, model)
    data = json.loads(FIXTURE.with_suffix(".json").read_text())
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section][field] = value
        else:
            data[section] = value
    model.with_suffix(".json").write_text(json.dumps(data))
    return model


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_sha256": "0" * 64}, "another model file"),
        ({"model_sha256": ""}, "names no model_sha256"),  # nothing would tie the labels to this file
        ({"labels": ["with_mask", "without_mask"]}, "3 outputs"),
        ({"labels": ["mask", "no_mask", "incorrect"]}, "unknown: mask, no_mask, incorrect"),
        ({"labels": ["with_mask", "without_mask", "without_mask"]}, "must be distinct names"),
        ({"preprocess__input_size": 32}, "metadata says"),
        ({"input__scale": 0.5}, "quantization"),
        ({"output__dtype": "int8"}, "dtype"),
    ],
)
def test_sidecar_that_disagrees_with_the_model_is_an_error(tmp_path, changes, message):
    with pytest.raises(ModelMetadataError, match=message):
        MaskClassifier(_copy_with_sidecar(tmp_path, **changes))


# --- the shipped model ----------------------------------------------------------------------------

SHIPPED = paths.classifier_model_path()  # MASKWATCH_MODELS_DIR points the tests at a candidate
needs_shipped_model = pytest.mark.skipif(
    not SHIPPED.is_file(), reason="models/mask_classifier.tflite is not built yet (python -m convert)"
)


@pytest.fixture(scope="module")
def shipped() -> MaskClassifier:
    return MaskClassifier(SHIPPED, threads=2)


@needs_shipped_model
def test_shipped_model_matches_the_contract(shipped):
    assert shipped.labels == list(LABELS)
    assert shipped.metadata.input.dtype == "uint8"
    assert (shipped.metadata.input.scale, shipped.metadata.input.zero_point) == (1.0, 0)
    assert SHIPPED.stat().st_size <= 3.5e6


@needs_shipped_model
@pytest.mark.parametrize("placement", [None, "correct", "below_nose", "on_chin"])
@pytest.mark.parametrize("face_px", [64, 160])
def test_shipped_model_tells_synthesized_masks_apart(shipped, placement, face_px):
    from tests.fixtures import entrance_frame

    frame, face = entrance_frame(placement, face_px=face_px)
    (prediction,) = shipped.classify(frame, [face.box], frame_order="BGR")
    assert prediction.label == face.label, f"{placement} at {face_px} px: {prediction.scores}"
    assert prediction.score >= 0.6


def test_latency_bench_runs_on_any_tflite(capsys):
    import importlib.util

    path = paths.REPO_ROOT / "bench" / "classifier_latency.py"
    spec = importlib.util.spec_from_file_location("classifier_latency", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--model", str(FIXTURE), "--repeats", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["input_size"] == 24
    assert {(r["threads"], r["batch"], r["strategy"]) for r in result["rows"]} == {
        (t, b, s) for t in (1, 2) for b, s in ((1, "single"), (6, "batched"), (6, "one by one"))
    }
    assert all(r["ms_per_face"] > 0 for r in result["rows"])
    assert (
        result["ms_per_face"]
        == next(r for r in result["rows"] if (r["threads"], r["batch"]) == (2, 1))["ms_per_face"]
    )
