"""Metrics checked against numbers worked out by hand."""

import json

import numpy as np
import pytest

from edge.scoring import (
    SceneScorer,
    agreement,
    classification_report,
    confusion_matrix,
    fold_to_two_class,
    iou_matrix,
    match_boxes,
    size_bucket,
)

LABELS = ["with_mask", "without_mask", "mask_weared_incorrect"]


@pytest.mark.parametrize(
    ("height", "bucket"),
    [(0, "<32"), (31.9, "<32"), (32, "32-63"), (63, "32-63"), (64, "64-127"), (128, ">=128")],
)
def test_size_bucket_edges(height, bucket):
    assert size_bucket(height) == bucket


def test_size_bucket_rejects_negative():
    with pytest.raises(ValueError):
        size_bucket(-1)


def test_confusion_rows_are_truth_columns_are_predictions():
    matrix = confusion_matrix(
        ["with_mask", "with_mask", "without_mask"], ["with_mask", "without_mask", "with_mask"], LABELS
    )
    assert matrix.tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 0]]


def test_confusion_rejects_unknown_label():
    with pytest.raises(ValueError, match="mask"):
        confusion_matrix(["mask"], ["with_mask"], LABELS)


def test_report_metrics_by_hand():
    y_true = ["with_mask"] * 4 + ["without_mask"] * 4 + ["mask_weared_incorrect"] * 2
    y_pred = (
        ["with_mask"] * 3 + ["without_mask"] + ["without_mask"] * 4 + ["with_mask", "mask_weared_incorrect"]
    )
    report = classification_report(y_true, y_pred, LABELS)
    assert report["n"] == 10
    assert report["accuracy"] == pytest.approx(0.8)
    with_mask = report["per_class"]["with_mask"]
    assert with_mask["precision"] == pytest.approx(3 / 4)
    assert with_mask["recall"] == pytest.approx(3 / 4)
    assert with_mask["f1"] == pytest.approx(0.75)
    without = report["per_class"]["without_mask"]
    assert without["precision"] == pytest.approx(4 / 5)
    assert without["recall"] == 1.0
    assert without["f1"] == pytest.approx(2 * 0.8 / 1.8)
    incorrect = report["per_class"]["mask_weared_incorrect"]
    assert (incorrect["precision"], incorrect["recall"], incorrect["support"]) == (1.0, 0.5, 2)
    assert report["macro_f1"] == pytest.approx(np.mean([0.75, 2 * 0.8 / 1.8, 2 / 3]))
    assert report["confusion"] == {"labels": LABELS, "matrix": [[3, 1, 0], [0, 4, 0], [1, 0, 1]]}
    json.dumps(report)  # JSON-ready


def test_report_by_size_splits_faces():
    report = classification_report(
        ["with_mask", "with_mask", "without_mask"],
        ["with_mask", "without_mask", "without_mask"],
        LABELS,
        face_px=[20, 40, 200],
    )
    assert report["by_size"]["<32"]["accuracy"] == 1.0
    assert report["by_size"]["32-63"]["accuracy"] == 0.0
    assert report["by_size"]["64-127"]["n"] == 0
    assert report["by_size"]["64-127"]["accuracy"] is None
    assert report["by_size"][">=128"]["per_class"]["without_mask"]["support"] == 1


def test_absent_label_does_not_count_in_macro_f1():
    report = classification_report(["with_mask", "without_mask"], ["with_mask", "without_mask"], LABELS)
    assert report["per_class"]["mask_weared_incorrect"]["recall"] is None
    assert report["macro_f1"] == 1.0


def test_a_class_never_predicted_has_f1_zero_and_counts_as_zero_in_macro_f1():
    report = classification_report(
        ["with_mask", "with_mask", "mask_weared_incorrect"], ["with_mask", "with_mask", "with_mask"], LABELS
    )
    incorrect = report["per_class"]["mask_weared_incorrect"]
    assert (incorrect["precision"], incorrect["recall"], incorrect["f1"]) == (None, 0.0, 0.0)
    with_mask_f1 = report["per_class"]["with_mask"]["f1"]
    assert report["macro_f1"] == pytest.approx((with_mask_f1 + 0.0) / 2), "the same 0 in both"


def test_a_class_predicted_where_it_never_is_has_f1_zero_and_one_in_neither_none():
    report = classification_report(["with_mask", "with_mask"], ["with_mask", "without_mask"], LABELS)
    without = report["per_class"]["without_mask"]
    assert (without["precision"], without["recall"], without["f1"], without["support"]) == (0.0, None, 0.0, 0)
    assert report["per_class"]["mask_weared_incorrect"]["f1"] is None
    assert report["macro_f1"] == pytest.approx(2 / 3), "only labels in the data count in the mean"


def test_two_class_mode_counts_incorrect_as_not_with_mask():
    y_true = ["with_mask", "without_mask", "without_mask"]
    y_pred = ["mask_weared_incorrect", "mask_weared_incorrect", "with_mask"]
    assert fold_to_two_class(y_pred) == ["without_mask", "without_mask", "with_mask"]
    report = classification_report(y_true, y_pred, LABELS, two_class=True)
    assert report["scoring"] == "2-class"
    assert report["confusion"]["labels"] == ["with_mask", "without_mask"]
    assert report["confusion"]["matrix"] == [[0, 1], [1, 1]]
    assert report["accuracy"] == pytest.approx(1 / 3)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="one entry per face"):
        classification_report(["with_mask"], [], LABELS)


def test_agreement():
    assert agreement(["a", "b", "c", "d"], ["a", "b", "c", "x"]) == 0.75
    assert agreement([], []) is None


def test_iou_by_hand():
    ious = iou_matrix(
        np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    )
    assert ious[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])
    assert iou_matrix(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)


def test_match_is_one_to_one_and_prefers_best_overlap():
    truth = np.array([[0, 0, 10, 10], [2, 0, 12, 10]])
    pred = np.array([[2, 0, 12, 10], [100, 100, 110, 110]])
    # both truths overlap pred 0 (IoU 1.0 and 8/12); only the better one gets it
    assert match_boxes(truth, pred) == [(1, 0)]
    assert match_boxes(truth, np.zeros((0, 4))) == []


def test_scene_scorer_detection_and_alarm_numbers():
    scorer = SceneScorer(labels=LABELS)
    # scene 1: a masked face (found, ok), an unmasked face (found, flagged), an incorrect one (missed),
    # and one detection on the wall flagged as without_mask
    scorer.add_scene(
        truth_boxes=[[0, 0, 40, 40], [100, 0, 200, 100], [300, 0, 310, 10]],
        truth_labels=["with_mask", "without_mask", "mask_weared_incorrect"],
        predicted_boxes=[[1, 1, 40, 40], [100, 0, 200, 100], [500, 500, 540, 540]],
        predicted_labels=["with_mask", "without_mask", "without_mask"],
    )
    # scene 2: a masked face found but flagged as incorrect
    scorer.add_scene([[0, 0, 200, 200]], ["with_mask"], [[0, 0, 200, 200]], ["mask_weared_incorrect"])
    report = scorer.report()
    detection = report["detection"]
    assert (detection["n_faces"], detection["n_detections"]) == (4, 4)
    assert detection["recall"] == 0.75
    assert detection["precision"] == 0.75
    assert detection["recall_by_size"]["<32"] == {"n": 1, "recall": 0.0}
    assert detection["recall_by_size"]["32-63"] == {"n": 1, "recall": 1.0}
    assert detection["recall_by_class"]["mask_weared_incorrect"]["recall"] == 0.0
    assert detection["recall_by_class"]["with_mask"] == {"n": 2, "recall": 1.0}
    assert detection["precision_by_size"]["32-63"] == {"n": 2, "precision": 0.5}
    classification = report["classification"]
    assert classification["n"] == 3
    assert classification["accuracy"] == pytest.approx(2 / 3)
    alarm = report["alarm"]
    assert alarm["violators"] == 2
    assert alarm["violator_recall"] == 0.5
    assert alarm["violator_recall_by_size"]["64-127"] == 1.0
    assert alarm["false_alarms"] == 2
    assert (alarm["false_alarms_on_masked"], alarm["false_alarms_on_non_faces"]) == (1, 1)
    assert alarm["false_alarm_rate"] == pytest.approx(2 / 3)  # 2 masked found + 1 non-face
    assert alarm["alarm_precision"] == pytest.approx(1 / 3)
    assert "alarm_min_face" not in report
    json.dumps(report)

    # what the daemon acts on: faces and detections >= 64 px; the 40 px masked face and wall box drop out
    big = scorer.report(min_face_px=64)["alarm_min_face"]
    assert (big["violators"], big["violator_recall"]) == (1, 1.0)
    assert (big["false_alarms_on_masked"], big["false_alarms_on_non_faces"]) == (1, 0)
    assert big["false_alarm_rate"] == 1.0  # the 200 px masked face, flagged as incorrect
