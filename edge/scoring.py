"""Metrics for the classifier and the detector, as JSON-ready dicts. Pure numpy, no I/O.

Training reports, conversion parity and `maskwatch evaluate` all score through these functions, so a
number printed by one means the same as the number printed by another. Every report is also split by
face size, because an entrance camera sees faces from a few pixels to the whole frame and averages hide
where a model fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# (name, lowest box height, first height not in it) in pixels
SIZE_BUCKETS = (("<32", 0, 32), ("32-63", 32, 64), ("64-127", 64, 128), (">=128", 128, None))
VIOLATION_LABELS = ("without_mask", "mask_weared_incorrect")


def size_bucket(height_px: float) -> str:
    """The size bucket of a face box height: `<32`, `32-63`, `64-127` or `>=128`."""
    for name, low, high in SIZE_BUCKETS:
        if height_px >= low and (high is None or height_px < high):
            return name
    raise ValueError(f"face height must be >= 0, got {height_px}")


def fold_to_two_class(labels: Sequence[str]) -> list[str]:
    """3-class labels scored as 2-class: a mask worn wrongly is "not with_mask", i.e. without_mask."""
    return ["without_mask" if label == "mask_weared_incorrect" else label for label in labels]


def is_violation(label: str) -> bool:
    return label in VIOLATION_LABELS


def _ratio(numerator: float, denominator: float) -> float | None:
    """None, not 0 or NaN, when nothing was counted: JSON-safe and not mistaken for a score."""
    return float(numerator) / float(denominator) if denominator else None


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts with rows = true label, columns = predicted label, in `labels` order."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = {label for label in (*y_true, *y_pred) if label not in index}
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not in {list(labels)}")
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    if len(y_true):
        np.add.at(matrix, ([index[t] for t in y_true], [index[p] for p in y_pred]), 1)
    return matrix


def per_class_metrics(matrix: np.ndarray, labels: Sequence[str]) -> dict[str, dict]:
    """Precision, recall, F1 and support per label from a confusion matrix.

    Precision is None for a label never predicted and recall None for one with no faces (undefined, not
    a score). F1 is then 0.0 if the label was in the data or in the predictions (a class the model never
    predicts has failed every one of its faces; one predicted where there is none is all false alarms),
    as scikit-learn's `zero_division=0` does, and None only for a label in neither.
    """
    result = {}
    for i, label in enumerate(labels):
        true_pos = int(matrix[i, i])
        predicted, support = int(matrix[:, i].sum()), int(matrix[i, :].sum())
        precision, recall = _ratio(true_pos, predicted), _ratio(true_pos, support)
        if not (predicted or support):
            f1 = None
        elif precision is None or recall is None or precision + recall == 0:
            f1 = 0.0
        else:
            f1 = 2 * precision * recall / (precision + recall)
        result[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return result


def macro_f1(per_class: dict[str, dict]) -> float | None:
    """Mean of the per-class F1 over the labels that have support (labels absent from the data do not
    count; one never predicted counts with its F1 of 0.0)."""
    scores = [m["f1"] for m in per_class.values() if m["support"]]
    return float(np.mean(scores)) if scores else None


def _check_lengths(y_true: Sequence, y_pred: Sequence, face_px: Sequence | None) -> None:
    if len(y_true) != len(y_pred) or (face_px is not None and len(face_px) != len(y_true)):
        raise ValueError(
            f"y_true, y_pred and face_px must have one entry per face, got {len(y_true)}, {len(y_pred)}"
            f" and {None if face_px is None else len(face_px)}"
        )


def _summary(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    matrix = confusion_matrix(y_true, y_pred, labels)
    per_class = per_class_metrics(matrix, labels)
    return {
        "n": len(y_true),
        "accuracy": _ratio(int(np.trace(matrix)), len(y_true)),
        "macro_f1": macro_f1(per_class),
        "per_class": per_class,
        "confusion": {"labels": list(labels), "matrix": matrix.tolist()},
    }


def classification_report(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    face_px: Sequence[float] | None = None,
    two_class: bool = False,
) -> dict:
    """Accuracy, per-class metrics, confusion matrix and macro-F1, overall and by face size.

    `two_class` folds both truth and predictions with `fold_to_two_class` and scores over
    with_mask / without_mask only: the fair score for a 3-class model on a 2-class dataset.
    """
    _check_lengths(y_true, y_pred, face_px)
    y_true, y_pred = list(y_true), list(y_pred)
    if two_class:
        y_true, y_pred = fold_to_two_class(y_true), fold_to_two_class(y_pred)
        labels = [label for label in labels if label != "mask_weared_incorrect"]
    report = {
        "scoring": "2-class" if two_class else f"{len(labels)}-class",
        **_summary(y_true, y_pred, labels),
    }
    if face_px is not None:
        buckets = [size_bucket(h) for h in face_px]
        report["by_size"] = {}
        for name, _, _ in SIZE_BUCKETS:
            keep = [i for i, b in enumerate(buckets) if b == name]
            report["by_size"][name] = _summary([y_true[i] for i in keep], [y_pred[i] for i in keep], labels)
    return report


def agreement(labels_a: Sequence[str], labels_b: Sequence[str]) -> float | None:
    """Share of faces where two models (float and int8) give the same top-1 label."""
    _check_lengths(labels_a, labels_b, None)
    return _ratio(sum(a == b for a, b in zip(labels_a, labels_b, strict=True)), len(labels_a))


# --- detection -------------------------------------------------------------------------------------


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `boxes_a` (N, 4) with every box in `boxes_b` (M, 4)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_boxes(
    truth: np.ndarray, predicted: np.ndarray, iou_threshold: float = 0.5
) -> list[tuple[int, int]]:
    """One-to-one (truth index, predicted index) pairs with IoU >= threshold, best overlaps first.

    Greedy on IoU rather than on detector score: for recall and precision at one threshold it pairs each
    face with the box that fits it best, and it needs no scores.
    """
    ious = iou_matrix(truth, predicted)
    pairs = []
    if ious.size == 0:
        return pairs
    candidates = np.argwhere(ious >= iou_threshold)
    order = np.argsort(-ious[candidates[:, 0], candidates[:, 1]], kind="stable")
    used_truth, used_pred = set(), set()
    for t, p in candidates[order]:
        if t not in used_truth and p not in used_pred:
            used_truth.add(int(t))
            used_pred.add(int(p))
            pairs.append((int(t), int(p)))
    return sorted(pairs)


@dataclass
class SceneScorer:
    """Accumulates detection and alarm outcomes scene by scene; `report()` gives the totals.

    A ground-truth face is *found* when a detection overlaps it at IoU >= 0.5. A violator (without_mask
    or mask_weared_incorrect) is *flagged* when it is found and its detection is classified as either
    violation label. A false alarm is a flagged detection that is a masked face or no face at all;
    the false-alarm rate divides them by every detection that should stay silent (found masked faces
    plus detections that match no face), and `alarm_precision` is the share of flags that were right.
    """

    labels: Sequence[str]
    iou_threshold: float = 0.5
    truth_found: list[tuple[str, str, bool]] = field(default_factory=list)  # (label, size, found)
    predicted: list[tuple[str, bool]] = field(default_factory=list)  # (size, matched)
    matched_true: list[str] = field(default_factory=list)
    matched_pred: list[str] = field(default_factory=list)
    matched_px: list[float] = field(default_factory=list)
    violators: list[tuple[float, bool]] = field(default_factory=list)  # (box height, flagged)
    non_violators: list[tuple[str, float, bool]] = field(
        default_factory=list
    )  # (masked / non_face, height, flagged)
    ignored_detections: int = 0  # detections on an ignore region: neither found faces nor false positives

    def add_scene(
        self,
        truth_boxes: Sequence[Sequence[float]],
        truth_labels: Sequence[str],
        predicted_boxes: Sequence[Sequence[float]],
        predicted_labels: Sequence[str],
        ignore_boxes: Sequence[Sequence[float]] = (),
    ) -> None:
        """Score one scene: its ground-truth faces and the detector+classifier output for it.

        `ignore_boxes` are annotated regions that are not scored (VOC's difficult faces, objects of
        labels we do not know): a detection left unmatched by the faces that overlaps one at the IoU
        threshold is dropped from the counts, as PASCAL VOC's own evaluation does, instead of being
        charged as a false positive and, when flagged, a false alarm.
        """
        truth = np.asarray(truth_boxes, dtype=np.float64).reshape(-1, 4)
        pred = np.asarray(predicted_boxes, dtype=np.float64).reshape(-1, 4)
        pairs = dict(match_boxes(truth, pred, self.iou_threshold))
        matched_pred = set(pairs.values())
        ignore = np.asarray(ignore_boxes, dtype=np.float64).reshape(-1, 4)
        unmatched = [p for p in range(len(pred)) if p not in matched_pred]
        on_ignored = set()
        if len(ignore) and unmatched:
            overlaps = iou_matrix(pred[unmatched], ignore).max(axis=1)
            on_ignored = {p for p, iou in zip(unmatched, overlaps, strict=True) if iou >= self.iou_threshold}
        self.ignored_detections += len(on_ignored)
        for t, label in enumerate(truth_labels):
            height = truth[t, 3] - truth[t, 1]
            size, found = size_bucket(height), t in pairs
            self.truth_found.append((label, size, found))
            flagged = found and is_violation(predicted_labels[pairs[t]])
            if found:
                self.matched_true.append(label)
                self.matched_pred.append(predicted_labels[pairs[t]])
                self.matched_px.append(float(height))
            if is_violation(label):
                self.violators.append((float(height), flagged))
            elif found:
                self.non_violators.append(("masked", float(height), flagged))
        for p, label in enumerate(predicted_labels):
            if p in on_ignored:
                continue
            height = pred[p, 3] - pred[p, 1]
            self.predicted.append((size_bucket(height), p in matched_pred))
            if p not in matched_pred:
                self.non_violators.append(("non_face", float(height), is_violation(label)))

    def _detection(self) -> dict:
        def recall(rows):
            return {"n": len(rows), "recall": _ratio(sum(found for *_, found in rows), len(rows))}

        def precision(rows):
            return {"n": len(rows), "precision": _ratio(sum(m for _, m in rows), len(rows))}

        sizes = [name for name, _, _ in SIZE_BUCKETS]
        return {
            "iou_threshold": self.iou_threshold,
            "n_faces": len(self.truth_found),
            "n_detections": len(self.predicted),
            "ignored_detections": self.ignored_detections,
            "recall": recall(self.truth_found)["recall"],
            "precision": precision(self.predicted)["precision"],
            "recall_by_size": {s: recall([r for r in self.truth_found if r[1] == s]) for s in sizes},
            "recall_by_class": {c: recall([r for r in self.truth_found if r[0] == c]) for c in self.labels},
            "recall_by_size_and_class": {
                s: {c: recall([r for r in self.truth_found if r[1] == s and r[0] == c]) for c in self.labels}
                for s in sizes
            },
            "precision_by_size": {s: precision([r for r in self.predicted if r[0] == s]) for s in sizes},
        }

    def _alarm(self, min_face_px: float = 0.0) -> dict:
        """Alarm numbers over faces and detections at least `min_face_px` tall (the daemon ignores smaller)."""
        violators = [(size_bucket(h), f) for h, f in self.violators if h >= min_face_px]
        quiet = [(kind, f) for kind, h, f in self.non_violators if h >= min_face_px]
        flagged = sum(f for _, f in violators)
        false_alarms = sum(f for _, f in quiet)
        return {
            "min_face_px": min_face_px,
            "violators": len(violators),
            "violator_recall": _ratio(flagged, len(violators)),
            "violator_recall_by_size": {
                name: _ratio(sum(f for s, f in violators if s == name), sum(s == name for s, _ in violators))
                for name, _, _ in SIZE_BUCKETS
            },
            "false_alarms": false_alarms,
            "false_alarm_rate": _ratio(false_alarms, len(quiet)),
            "false_alarms_on_masked": sum(f for kind, f in quiet if kind == "masked"),
            "false_alarms_on_non_faces": sum(f for kind, f in quiet if kind == "non_face"),
            "alarm_precision": _ratio(flagged, flagged + false_alarms),
        }

    def report(self, min_face_px: float | None = None, two_class: bool = False) -> dict:
        """Detection, classification on matched faces, and the alarm numbers, as one JSON-ready dict.

        `alarm` counts every size; with `min_face_px`, `alarm_min_face` counts only what the daemon
        would act on (faces and detections at least that tall). `two_class` scores the matched faces as
        `classification_report` does, for scenes annotated with_mask / without_mask only (the alarm
        numbers need no folding: both violation labels already count as one).
        """
        report = {
            "detection": self._detection(),
            "classification": classification_report(
                self.matched_true,
                self.matched_pred,
                self.labels,
                face_px=self.matched_px,
                two_class=two_class,
            ),
            "alarm": self._alarm(),
        }
        if min_face_px is not None:
            report["alarm_min_face"] = self._alarm(min_face_px)
        return report
