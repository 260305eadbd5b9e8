"""`maskwatch evaluate DATASET_DIR`: how right is the int8 model on faces it has never seen?

Two kinds of folder. Class folders (ROOT/<label>/*.jpg, sub-folders included): each image is a face
crop, classified whole; a with_mask/without_mask-only dataset is scored as 2-class, a worn-wrong
prediction counting as "not with_mask". VOC scene folders (Annotations/ + JPEGImages/, or annotations/
+ images/): the face detector runs on every scene as the daemon would, detections are matched to the
boxes at IoU 0.5, and matched faces are classified; the report adds detection recall and precision and
the two numbers the alarm lives by, violator recall and false-alarm rate. Either may be split into
Train/ Validation/ Test/ folders, as exports ship; every split is read. An image that cannot be read
(empty, corrupt, cut short) is skipped, logged and counted in the report; none readable is an error.
TFLite runtime only, so it runs on the Pi as well.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BATCH = 32  # crops classified per call: bounded memory on a Pi, and batches amortize the invoke
UNREADABLE_EXAMPLES = 5  # unreadable paths named in the report; the log names every one


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score the classifier on a class-folder dataset or a VOC scene folder",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "dataset",
        type=Path,
        metavar="DATASET_DIR",
        help="ROOT/<label>/**/*.jpg, or a VOC folder: Annotations/ + JPEGImages/ (or annotations/ + images/)",
    )
    parser.add_argument(
        "--model", type=Path, help="classifier .tflite (default: the config's, else the shipped one)"
    )
    parser.add_argument("--config", type=Path, help="config file (detector settings, classifier threads)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from edge.classifier import MaskClassifier
    from edge.commands.run import config_path
    from edge.config import ConfigError, load_config
    from edge.datasets import DatasetError, is_voc_scene_folder
    from edge.model_metadata import ModelMetadataError
    from edge.runtime import ModelFileError

    try:
        config = load_config(config_path(args.config))
        model = args.model or (Path(config.classifier.model) if config.classifier.model else None)
        classifier = MaskClassifier(model, threads=config.classifier.threads)
        if is_voc_scene_folder(args.dataset):
            report = evaluate_scenes(args.dataset, classifier, _detector(config), config.decision.min_face_px)
        else:
            report = evaluate_class_folders(args.dataset, classifier)
    except (
        ConfigError,
        DatasetError,
        ModelMetadataError,
        ModelFileError,
        FileNotFoundError,
        ImportError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = {"dataset": str(args.dataset), "model": str(classifier.model_path),
              "model_version": classifier.metadata.model_version, **report}  # fmt: skip
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def _detector(config):
    from edge.faces import FaceDetector

    # the whole of every scene, without decision.roi: its boxes are annotated anywhere in the photo, and
    # an ROI set for the door camera would count those outside it as misses
    return FaceDetector(config.detector)


class ImageReader:
    """Reads dataset images for scoring; one that cannot be read is logged, counted and left out, so one
    bad file in thousands costs that file and not the evaluation."""

    def __init__(self) -> None:
        self.unreadable: list[Path] = []

    def read(self, path: Path) -> np.ndarray | None:
        from edge.datasets import load_image_bgr

        return self._guarded(path, load_image_bgr, path)

    def read_scene(self, scene):
        """A VOC scene's `ScenePhoto` (boxes in the decoded photo's pixels), or None as `read` gives."""
        from edge.scene_photo import load_scene_photo

        return self._guarded(scene.image, load_scene_photo, scene)

    def _guarded(self, path: Path, load, what):
        from edge.datasets import DatasetError

        try:
            return load(what)
        except DatasetError as exc:
            log.warning("skipping: %s", exc)
            self.unreadable.append(path)
            return None

    def check_any_read(self, root: Path, total: int) -> None:
        """An error when not one of `total` images could be read: there is nothing to score."""
        from edge.datasets import DatasetError

        if total and len(self.unreadable) == total:
            raise DatasetError(
                f"{root}: none of its {total} images could be read (the first: {self.unreadable[0]}); "
                "check that the files are whole images (JPEG, PNG, BMP, WebP, TIFF, GIF)"
            )

    def report(self) -> dict:
        return {
            "count": len(self.unreadable),
            "examples": [str(p) for p in self.unreadable[:UNREADABLE_EXAMPLES]],
        }


def evaluate_class_folders(root: Path, classifier) -> dict:
    """Every image under ROOT/<label>/ classified whole; the classification report, by face size."""
    from edge.datasets import read_class_folders
    from edge.preprocess import crop_whole_image
    from edge.scoring import classification_report

    dataset = read_class_folders(root)
    reader = ImageReader()
    truth, predicted, heights = [], [], []
    for start in range(0, len(dataset.samples), BATCH):
        batch = dataset.samples[start : start + BATCH]
        read = [(sample, image) for sample in batch if (image := reader.read(sample.image)) is not None]
        if not read:
            continue
        crops = np.stack([crop_whole_image(image, classifier.spec, frame_order="BGR") for _, image in read])
        predicted.extend(classifier.labels[i] for i in np.argmax(classifier.classify_crops(crops), axis=1))
        truth.extend(sample.label for sample, _ in read)
        heights.extend(image.shape[0] for _, image in read)
    reader.check_any_read(root, len(dataset.samples))
    report = classification_report(
        truth, predicted, classifier.labels, face_px=heights, two_class=dataset.is_two_class
    )
    report["layout"] = "class folders"
    report["predicted_counts"] = {label: predicted.count(label) for label in classifier.labels}
    report["unreadable"] = reader.report()
    return report


def evaluate_scenes(root: Path, classifier, detector, min_face_px: int | None = None) -> dict:
    """Detect, match at IoU 0.5 and classify on every VOC scene; detection, matched-face and alarm numbers.

    A scene whose image cannot be read is left out whole, its boxes too (counted under `unreadable`), and
    so is an annotation that is not valid XML or names an image that is not there (`unusable_annotations`).
    Scenes annotated with_mask / without_mask only are scored as 2-class, as class folders are. Boxes
    drawn on the photo's stored pixels before EXIF turned it upright, or on the photo before it was
    resized, are moved into the photo's pixels (`edge.scene_photo`), counted under `annotation_fit`.
    """
    from edge.datasets import DatasetError, is_two_class, read_voc_scenes, skipped_object_counts
    from edge.scene_photo import AS_ANNOTATED
    from edge.scoring import SceneScorer

    scorer = SceneScorer(labels=classifier.labels)
    unusable: list[tuple[Path, str]] = []  # annotations that are not XML or name no image: left out, counted
    scenes = read_voc_scenes(root, unusable)
    if unusable:
        log.warning(
            "%s: left out %d annotations that are not valid XML or name an image that is not there (the first: %s)",
            root, len(unusable), unusable[0][1],
        )  # fmt: skip
        if not scenes:
            raise DatasetError(
                f"{root}: none of its {len(unusable)} annotations is usable (the first: {unusable[0][1]})"
            )
    reader = ImageReader()
    fits: Counter[str] = Counter()
    for index, annotated in enumerate(scenes, 1):
        photo = reader.read_scene(annotated)
        if photo is None:
            continue
        frame, scene = photo.image, photo.scene
        if photo.fit != AS_ANNOTATED:
            fits[photo.fit] += 1
        faces = detector.detect(frame, frame_order="BGR")
        predictions = classifier.classify(frame, faces, frame_order="BGR")
        truth = [(box, face.label) for face in scene.faces if (box := _inside(face.box, frame)) is not None]
        scorer.add_scene(
            [box for box, _ in truth],
            [label for _, label in truth],
            [face.box for face in faces],
            [prediction.label for prediction in predictions],
            ignore_boxes=[box for ignored in scene.ignored if (box := _inside(ignored, frame)) is not None],
        )
        if index % 100 == 0:
            log.info("%d/%d scenes", index, len(scenes))
    reader.check_any_read(root, len(scenes))
    if fits:
        log.warning(
            "%s: scenes whose <size> is not their decoded photo's (boxes moved into its pixels where that is a turn or a resize): %s",
            root, ", ".join(f"{fit} {n}" for fit, n in fits.items()),
        )  # fmt: skip
    report = scorer.report(
        min_face_px, two_class=is_two_class(face.label for s in scenes for face in s.faces)
    )
    return {
        "layout": "VOC scenes",
        "scenes": len(scenes) - len(reader.unreadable),
        **report.pop("classification"),
        **report,
        "skipped_objects": skipped_object_counts(scenes),
        "annotation_fit": dict(fits),
        "unreadable": reader.report(),
        "unusable_annotations": {"count": len(unusable), "examples": [why for _, why in unusable[:5]]},
    }


def _inside(box, frame: np.ndarray):
    """A ground-truth box cut to the photo, or None when too little of it is in the photo to be a face.

    The detector's boxes never leave the frame, so a face at the photo's edge annotated past it would
    miss its match at IoU 0.5 and fall into too big a size bucket.
    """
    from edge.datasets import MIN_BOX_SIDE_PX

    height, width = frame.shape[:2]
    x1, y1, x2, y2 = (
        float(np.clip(v, 0, limit)) for v, limit in zip(box, (width, height, width, height), strict=True)
    )
    return (x1, y1, x2, y2) if x2 - x1 >= MIN_BOX_SIDE_PX and y2 - y1 >= MIN_BOX_SIDE_PX else None


# --- human-readable tables -------------------------------------------------------------------------


def _num(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _classification_lines(report: dict) -> list[str]:
    labels = report["confusion"]["labels"]
    width = max(len(label) for label in [*labels, "label"]) + 2
    lines = [f"{'label':<{width}}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for label, m in report["per_class"].items():
        lines.append(
            f"{label:<{width}}{_num(m['precision']):>10}{_num(m['recall']):>8}{_num(m['f1']):>8}{m['support']:>9}"
        )
    if any(m["precision"] is None or m["recall"] is None for m in report["per_class"].values()):
        lines.append("(precision -: never predicted; recall -: no such faces; f1 is then 0, as in macro-F1)")
    lines += [
        "",
        "confusion (rows: true, columns: predicted)",
        " " * width + "".join(f"{lb:>{width}}" for lb in labels),
    ]
    for label, row in zip(labels, report["confusion"]["matrix"], strict=True):
        lines.append(f"{label:<{width}}" + "".join(f"{v:>{width}}" for v in row))
    lines += ["", f"{'face height':<12}{'n':>7}{'accuracy':>10}{'macro-F1':>10}"]
    for size, m in report.get("by_size", {}).items():
        lines.append(f"{size:<12}{m['n']:>7}{_num(m['accuracy']):>10}{_num(m['macro_f1']):>10}")
    return lines


def _detection_lines(detection: dict) -> list[str]:
    lines = [
        f"detection at IoU {detection['iou_threshold']}: recall {_num(detection['recall'])} of "
        f"{detection['n_faces']} faces, precision {_num(detection['precision'])} of {detection['n_detections']} detections"
        + (
            f" ({detection['ignored_detections']} more on difficult or unscored objects, not counted)"
            if detection.get("ignored_detections")
            else ""
        ),
        f"{'face height':<12}{'faces':>7}{'recall':>8}{'detections':>12}{'precision':>10}",
    ]
    for size, r in detection["recall_by_size"].items():
        p = detection["precision_by_size"][size]
        lines.append(f"{size:<12}{r['n']:>7}{_num(r['recall']):>8}{p['n']:>12}{_num(p['precision']):>10}")
    lines.append("recall by class: " + ", ".join(
        f"{label} {_num(r['recall'])} (n={r['n']})" for label, r in detection["recall_by_class"].items()
    ))  # fmt: skip
    return lines


def _alarm_lines(alarm: dict) -> list[str]:
    by_size = ", ".join(f"{size} {_num(v)}" for size, v in alarm["violator_recall_by_size"].items())
    where = f"faces >= {alarm['min_face_px']} px" if alarm["min_face_px"] else "all sizes"
    return [
        f"alarm, {where}: violator recall {_num(alarm['violator_recall'])} of {alarm['violators']} violators ({by_size})",
        f"  false-alarm rate {_num(alarm['false_alarm_rate'])}: {alarm['false_alarms_on_masked']} masked faces and "
        f"{alarm['false_alarms_on_non_faces']} non-faces flagged; alarm precision {_num(alarm['alarm_precision'])}",
    ]


def format_report(report: dict) -> str:
    """The report as tables for a terminal."""
    scoring = report["scoring"]
    if scoring == "2-class":
        scoring += ": a mask_weared_incorrect prediction counts as without_mask"
    header = [
        f"dataset: {report['dataset']} ({report['layout']})",
        f"model: {report['model']} (version {report['model_version']})",
        f"scoring: {scoring}",
    ]
    if "predicted_counts" in report:
        header.append("predicted: " + ", ".join(f"{k} {v}" for k, v in report["predicted_counts"].items()))
    if "scenes" in report:
        header.append(f"scenes scored: {report['scenes']}")
    if report.get("skipped_objects"):
        skipped = ", ".join(f"{name or '(no name)'} {n}" for name, n in report["skipped_objects"].items())
        header.append(f"objects skipped (not a face label, or no box): {skipped}")
    if report.get("annotation_fit"):
        fits = ", ".join(f"{fit} {n}" for fit, n in report["annotation_fit"].items())
        header.append(f"scenes whose <size> is not their photo's: {fits}")
    unreadable = report.get("unreadable", {"count": 0, "examples": []})
    line = f"unreadable images skipped: {unreadable['count']}"
    if unreadable["examples"]:
        more = " ..." if unreadable["count"] > len(unreadable["examples"]) else ""
        line += f" ({', '.join(unreadable['examples'])}{more})"
    header.append(line)
    unusable = report.get("unusable_annotations", {"count": 0, "examples": []})
    if unusable["count"]:
        more = " ..." if unusable["count"] > len(unusable["examples"]) else ""
        header.append(
            f"annotations left out (not XML, or no such image): {unusable['count']} ({'; '.join(unusable['examples'])}{more})"
        )
    header.append("")
    body = []
    if "detection" in report:
        body = _detection_lines(report["detection"]) + [""] + _alarm_lines(report["alarm"])
        if "alarm_min_face" in report:
            body += _alarm_lines(report["alarm_min_face"])
        body += ["", "classification of matched faces:"]
    summary = (
        f"n={report['n']}  accuracy {_num(report['accuracy'], 4)}  macro-F1 {_num(report['macro_f1'], 4)}"
    )
    return "\n".join(header + body + [summary, ""] + _classification_lines(report))
