"""`maskwatch evaluate` end to end with the colour model (known answers) and a scripted face detector."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.commands import evaluate
from tests.color_model import FIXTURE, color_image


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    args = parser.parse_args(["evaluate", *argv])
    return args.handler(args)


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch):
    monkeypatch.delenv("MASKWATCH_CONFIG", raising=False)


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def test_two_class_folders_score_incorrect_as_not_with_mask(tmp_path, capsys):
    for i in range(3):
        _write(tmp_path / "mask" / f"m{i}.png", color_image("with_mask", 40, 40, seed=i))
        _write(tmp_path / "no_mask" / f"n{i}.png", color_image("without_mask", 70, 70, seed=i))
    _write(
        tmp_path / "no_mask" / "wrongly.png", color_image("mask_weared_incorrect", 130, 130)
    )  # a violator too
    _write(tmp_path / "mask" / "missed.png", color_image("without_mask", 20, 20))  # the one real error

    assert _run([str(tmp_path), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scoring"] == "2-class"
    assert report["n"] == 8
    assert report["accuracy"] == pytest.approx(7 / 8)
    assert report["confusion"] == {"labels": ["with_mask", "without_mask"], "matrix": [[3, 1], [0, 4]]}
    assert report["per_class"]["with_mask"] == {
        "precision": 1.0,
        "recall": 0.75,
        "f1": pytest.approx(6 / 7),
        "support": 4,
    }
    assert report["predicted_counts"]["mask_weared_incorrect"] == 1
    assert report["by_size"]["<32"]["n"] == 1 and report["by_size"]["<32"]["accuracy"] == 0.0
    assert report["by_size"][">=128"]["n"] == 1
    assert report["model_version"] == "color-test"


def test_three_class_folders_and_the_table(tmp_path, capsys):
    for label, folder in (
        ("with_mask", "with_mask"),
        ("without_mask", "without_mask"),
        ("mask_weared_incorrect", "incorrect"),
    ):
        for i in range(2):
            _write(tmp_path / folder / f"{i}.jpg", color_image(label, 64, 64, seed=i))
    assert _run([str(tmp_path), "--model", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    assert "scoring: 3-class" in out
    assert "n=6  accuracy 1.0000  macro-F1 1.0000" in out
    assert "mask_weared_incorrect" in out and "confusion (rows: true, columns: predicted)" in out
    assert any(line.startswith("64-127") and line.split()[1:3] == ["6", "1.000"] for line in out.splitlines())


def test_a_class_the_model_never_predicts_scores_f1_zero_in_the_json_and_the_table(tmp_path, capsys):
    for i in range(2):
        _write(tmp_path / "with_mask" / f"{i}.jpg", color_image("with_mask", 64, 64, seed=i))
        _write(tmp_path / "incorrect" / f"{i}.jpg", color_image("with_mask", 64, 64, seed=10 + i))  # missed
        _write(tmp_path / "without_mask" / f"{i}.jpg", color_image("without_mask", 64, 64, seed=i))
    assert _run([str(tmp_path), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    incorrect = report["per_class"]["mask_weared_incorrect"]
    assert (incorrect["precision"], incorrect["recall"], incorrect["f1"]) == (None, 0.0, 0.0)
    f1s = [m["f1"] for m in report["per_class"].values()]
    assert report["macro_f1"] == pytest.approx(sum(f1s) / 3), "macro-F1 is the mean of the f1 shown"
    assert _run([str(tmp_path), "--model", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("mask_weared_incorrect "))
    assert row.split()[1:5] == ["-", "0.000", "0.000", "2"]
    assert "precision -: never predicted" in out


class ScriptedDetector:
    """Returns the given boxes for each scene, in order: the detector seam for scoring tests."""

    def __init__(self, boxes_per_scene):
        self.boxes = list(boxes_per_scene)

    def detect(self, frame, frame_order="BGR"):
        class Face:
            def __init__(self, box):
                self.box, self.score, self.keypoints = box, 0.9, ()

        return [Face(box) for box in self.boxes.pop(0)]


VOC = """<annotation><filename>{name}.jpg</filename><size><width>300</width><height>120</height></size>
{objects}</annotation>"""
OBJECT = "<object><name>{label}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"


def _scene_folder(
    root: Path,
    images: str = "images",
    annotations: str = "annotations",
    names: tuple[str, ...] = ("with_mask", "without_mask", "mask_weared_incorrect"),
    scene: str = "s0",
) -> Path:
    """One scene: a masked face, an unmasked face and a wrongly masked face, 60 px, side by side."""
    frame = np.full((120, 300, 3), 128, np.uint8)
    objects = []
    for i, (label, name) in enumerate(
        zip(("with_mask", "without_mask", "mask_weared_incorrect"), names, strict=True)
    ):
        x = 20 + 95 * i
        frame[20:100, x : x + 80] = color_image(label, 80, 80, seed=i)
        objects.append(OBJECT.format(label=name, x1=x + 10, y1=30, x2=x + 70, y2=90))
    _write(root / images / f"{scene}.jpg", frame)
    (root / annotations).mkdir(parents=True, exist_ok=True)
    (root / annotations / f"{scene}.xml").write_text(VOC.format(name=scene, objects="".join(objects)))
    return root


def test_scene_folder_detection_classification_and_alarm(tmp_path, monkeypatch, capsys):
    root = _scene_folder(tmp_path)
    detections = [
        (31, 30, 90, 90),  # the masked face
        (127, 31, 185, 90),  # the unmasked face
        # the wrongly masked face is missed; a red-and-blue patch on the wall is not a face
        (250, 0, 299, 20),
    ]
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([detections]))
    assert _run([str(root), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "VOC scenes" and report["scenes"] == 1
    assert report["detection"]["recall"] == pytest.approx(2 / 3)
    assert report["detection"]["precision"] == pytest.approx(2 / 3)
    assert report["detection"]["recall_by_class"]["mask_weared_incorrect"] == {"n": 1, "recall": 0.0}
    assert report["n"] == 2 and report["accuracy"] == 1.0  # matched faces, classified right
    alarm = report["alarm"]
    assert alarm["violators"] == 2 and alarm["violator_recall"] == 0.5
    assert alarm["false_alarms_on_masked"] == 0
    assert report["alarm_min_face"]["min_face_px"] == 32  # config default: the daemon ignores smaller faces
    assert report["alarm_min_face"]["violators"] == 2
    assert set(report) >= {"n", "accuracy", "per_class", "confusion", "by_size", "detection", "alarm"}


def test_scene_folder_table(tmp_path, monkeypatch, capsys):
    root = _scene_folder(tmp_path)
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([[(31, 30, 90, 90)]]))
    assert _run([str(root), "--model", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    assert "detection at IoU 0.5: recall 0.333 of 3 faces, precision 1.000 of 1 detections" in out
    assert "alarm, all sizes: violator recall 0.000 of 2 violators" in out
    assert "alarm, faces >= 32 px: violator recall 0.000 of 2 violators" in out  # the config's min_face_px
    assert "classification of matched faces:" in out


def test_pascal_voc_layout_with_kaggle_class_names_is_evaluated(tmp_path, monkeypatch, capsys):
    names = ("face_with_mask", "face_no_mask", "face_with_mask_incorrect")
    root = _scene_folder(tmp_path, images="JPEGImages", annotations="Annotations", names=names)
    xml = root / "Annotations" / "s0.xml"
    hat = OBJECT.format(label="hat", x1=0, y1=0, x2=40, y2=20)
    xml.write_text(xml.read_text().replace("</annotation>", hat + "</annotation>"))
    detections = [(31, 30, 90, 90), (127, 31, 185, 90), (221, 30, 280, 90)]
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([detections]))
    assert _run([str(root), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "VOC scenes" and report["scenes"] == 1
    assert report["detection"]["recall"] == 1.0 and report["detection"]["n_faces"] == 3
    assert report["n"] == 3 and report["accuracy"] == 1.0
    assert report["skipped_objects"] == {"hat": 1}
    assert report["unreadable"] == {"count": 0, "examples": []}


def test_a_dataset_split_into_train_validation_test_is_read_whole(tmp_path, capsys):
    """Kaggle's "Face Mask 12K" layout: ROOT/Train|Validation|Test/WithMask|WithoutMask."""
    for split, count in (("Train", 3), ("Validation", 1), ("Test", 2)):
        for i in range(count):
            _write(tmp_path / split / "WithMask" / f"m{i}.png", color_image("with_mask", 40, 40, seed=i))
            _write(
                tmp_path / split / "WithoutMask" / f"n{i}.png", color_image("without_mask", 40, 40, seed=i)
            )
    assert _run([str(tmp_path), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "class folders" and report["scoring"] == "2-class"
    assert report["n"] == 12 and report["per_class"]["without_mask"]["support"] == 6


def test_a_roboflow_voc_export_split_into_folders_is_read_whole(tmp_path, monkeypatch, capsys):
    """Roboflow's Pascal VOC export: ROOT/train|valid|test/, each with its images and XML side by side."""
    for split in ("train", "valid"):
        _scene_folder(tmp_path / split, images=".", annotations=".", scene=f"{split}_s0")
    detections = [(31, 30, 90, 90), (127, 31, 185, 90), (221, 30, 280, 90)]
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([detections, detections]))
    assert _run([str(tmp_path), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "VOC scenes" and report["scenes"] == 2
    assert report["detection"]["n_faces"] == 6 and report["accuracy"] == 1.0


def _corrupt_files(folder: Path) -> list[Path]:
    """An empty file, a JPEG cut short and one that is not an image at all."""
    folder.mkdir(parents=True, exist_ok=True)
    whole = cv2.imencode(".jpg", color_image("with_mask", 64, 64))[1].tobytes()
    files = {"empty.jpg": b"", "cut.jpg": whole[: len(whole) // 2], "text.jpg": b"<html>404</html>"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return sorted(folder / name for name in files)


def test_unreadable_images_among_good_ones_are_skipped_counted_and_named(tmp_path, capsys, caplog):
    for i in range(2):  # MaskedFace-Net's layout: CMFD/ and IMFD/ with numbered sub-folders
        _write(tmp_path / "CMFD" / "00000" / f"{i}.jpg", color_image("with_mask", 64, 64, seed=i))
        _write(tmp_path / "IMFD" / "00000" / f"{i}.jpg", color_image("mask_weared_incorrect", 64, 64, seed=i))
    bad = _corrupt_files(tmp_path / "CMFD" / "01000")
    assert _run([str(tmp_path), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 4 and report["accuracy"] == 1.0
    assert report["per_class"]["with_mask"]["support"] == 2
    assert report["unreadable"] == {"count": 3, "examples": [str(path) for path in bad]}
    assert all(path.name in caplog.text for path in bad)
    assert _run([str(tmp_path), "--model", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    assert f"unreadable images skipped: 3 ({bad[0]}, {bad[1]}, {bad[2]})" in out
    assert "n=4  accuracy 1.0000" in out


def test_a_scene_with_an_unreadable_image_is_left_out_and_counted(tmp_path, monkeypatch, capsys):
    root = _scene_folder(tmp_path, scene="s0")
    _scene_folder(tmp_path, scene="s1")
    (root / "images" / "s0.jpg").write_bytes(b"")
    detections = [(31, 30, 90, 90), (127, 31, 185, 90), (221, 30, 280, 90)]
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([detections]))
    assert _run([str(root), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scenes"] == 1 and report["detection"]["n_faces"] == 3
    assert report["unreadable"] == {"count": 1, "examples": [str(root / "images" / "s0.jpg")]}


def test_no_readable_image_at_all_exits_2_saying_so(tmp_path, monkeypatch, capsys):
    _corrupt_files(tmp_path / "classes" / "with_mask")
    assert _run([str(tmp_path / "classes"), "--model", str(FIXTURE), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "none of its 3 images could be read" in captured.err
    root = _scene_folder(tmp_path / "voc")
    (root / "images" / "s0.jpg").write_bytes(b"")
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([]))
    assert _run([str(root), "--model", str(FIXTURE)]) == 2
    assert "none of its 1 images could be read" in capsys.readouterr().err


def test_missing_model_and_bad_dataset_exit_2_with_the_reason(tmp_path, capsys):
    (tmp_path / "hats").mkdir()
    _write(tmp_path / "hats" / "a.png", color_image("with_mask"))
    assert _run([str(tmp_path), "--model", str(tmp_path / "none.tflite")]) == 2
    assert "none.tflite not found" in capsys.readouterr().err
    assert _run([str(tmp_path), "--model", str(FIXTURE)]) == 2
    assert "hats" in capsys.readouterr().err


@pytest.mark.skipif(
    os.environ.get("MASKWATCH_TEST_RUNTIME", "ai_edge_litert") != "ai_edge_litert",
    reason="tflite-runtime 2.14 crashes the process on a model that is not one",
)
def test_a_model_file_the_runtime_refuses_exits_2_naming_it(tmp_path, capsys):
    """Its metadata matches (the hash of these very bytes), so only the runtime can tell."""
    (tmp_path / "data" / "with_mask").mkdir(parents=True)
    _write(tmp_path / "data" / "with_mask" / "a.png", color_image("with_mask"))
    model = tmp_path / "garbled.tflite"
    model.write_bytes(b"TFL3" + bytes(range(256)) * 40)
    metadata = json.loads(FIXTURE.with_suffix(".json").read_text())
    metadata["model_sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    model.with_suffix(".json").write_text(json.dumps(metadata))
    assert _run([str(tmp_path / "data"), "--model", str(model)]) == 2
    assert "garbled.tflite" in capsys.readouterr().err


def test_an_annotation_naming_no_image_or_not_xml_is_left_out_and_counted(tmp_path, monkeypatch, capsys):
    """One broken file in a downloaded dataset must not stop the scoring of all the others."""
    root = _scene_folder(tmp_path)
    (root / "annotations" / "lost.xml").write_text(
        VOC.format(name="lost", objects="")
    )  # lost.jpg is not there
    (root / "annotations" / "cut.xml").write_text("<annotation><filename>cut.jp")
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([[(31, 30, 90, 90)]]))
    assert _run([str(root), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scenes"] == 1 and report["unusable_annotations"]["count"] == 2
    assert any("lost" in why for why in report["unusable_annotations"]["examples"])
    assert _run([str(root), "--model", str(FIXTURE)]) == 0
    assert "annotations left out (not XML, or no such image): 2" in capsys.readouterr().out


def test_a_folder_of_only_unusable_annotations_exits_2(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "lost.xml").write_text(VOC.format(name="lost", objects=""))
    assert _run([str(tmp_path), "--model", str(FIXTURE)]) == 2
    assert "none of its 1 annotations is usable" in capsys.readouterr().err


def test_a_two_class_voc_folder_is_scored_as_two_class(tmp_path, monkeypatch, capsys):
    """mask / no_mask scenes (the third face, coloured to be predicted worn-wrong, is annotated no_mask):
    a worn-wrong prediction on an unmasked face is right in 2-class scoring, not an error."""
    root = _scene_folder(tmp_path, names=("mask", "no_mask", "no_mask"))
    detections = [(31, 30, 90, 90), (127, 31, 185, 90), (221, 30, 280, 90)]
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([detections]))
    assert _run([str(root), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scoring"] == "2-class"
    assert report["confusion"] == {"labels": ["with_mask", "without_mask"], "matrix": [[1, 0], [0, 2]]}
    assert report["accuracy"] == 1.0
    assert report["alarm"]["violator_recall"] == 1.0


def test_a_face_annotated_past_the_photo_edge_is_matched_by_the_part_in_the_photo(
    tmp_path, monkeypatch, capsys
):
    """The detector's boxes never leave the frame; a box drawn 180 px below a 120 px photo is cut to it."""
    root = _scene_folder(tmp_path)
    xml = root / "annotations" / "s0.xml"
    xml.write_text(
        xml.read_text().replace("<xmax>90</xmax><ymax>90</ymax>", "<xmax>90</xmax><ymax>300</ymax>")
    )
    detections = [(31, 30, 90, 120), (127, 31, 185, 90), (221, 30, 280, 90)]
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([detections]))
    assert _run([str(root), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["detection"]["recall"] == 1.0 and report["detection"]["precision"] == 1.0
    assert report["detection"]["recall_by_size"]["64-127"] == {"n": 1, "recall": 1.0}  # 90 px in the photo


def test_an_image_opencv_refuses_is_skipped_and_counted(tmp_path, capsys):
    from tests.test_datasets import _png_claiming

    _write(tmp_path / "with_mask" / "a.png", color_image("with_mask", 64, 64))
    (tmp_path / "with_mask" / "huge.png").write_bytes(_png_claiming(60000, 60000))
    assert _run([str(tmp_path), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 1 and report["unreadable"]["count"] == 1


def test_detections_on_difficult_faces_and_unscored_objects_count_neither_way(tmp_path, monkeypatch, capsys):
    """PASCAL VOC's rule: a difficult face is not a miss when unfound, nor is a detection on it (or on an
    object of a label we do not score, like `face_other_covering`) a false positive or a false alarm."""
    root = _scene_folder(tmp_path, names=("with_mask", "face_other_covering", "mask_weared_incorrect"))
    xml = root / "annotations" / "s0.xml"
    text = xml.read_text()
    last = text.rindex("<object>")
    xml.write_text(text[:last] + text[last:].replace("<object>", "<object><difficult>1</difficult>", 1))
    # the masked face is found; the other two (the unscored and the difficult face) are detected and flagged
    detections = [(31, 30, 90, 90), (127, 31, 185, 90), (221, 30, 280, 90)]
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([detections]))
    assert _run([str(root), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["detection"]["n_faces"] == 1 and report["detection"]["recall"] == 1.0
    assert report["detection"]["n_detections"] == 1 and report["detection"]["precision"] == 1.0
    assert report["detection"]["ignored_detections"] == 2
    assert report["alarm"]["false_alarms"] == 0 and report["alarm"]["violators"] == 0
    assert report["skipped_objects"] == {"face_other_covering": 1, "mask_weared_incorrect (difficult)": 1}


def test_a_detection_near_but_not_on_an_unscored_object_is_still_a_false_positive(
    tmp_path, monkeypatch, capsys
):
    root = _scene_folder(tmp_path, names=("with_mask", "without_mask", "hat"))
    detections = [(31, 30, 90, 90), (127, 31, 185, 90), (221, 60, 280, 119)]  # IoU 0.33 with the hat's box
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([detections]))
    assert _run([str(root), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["detection"]["ignored_detections"] == 0
    assert report["detection"]["n_detections"] == 3 and report["detection"]["precision"] == 2 / 3


def test_a_phone_photo_annotated_on_its_stored_pixels_is_scored_upright(tmp_path, monkeypatch, capsys):
    """LabelImg draws on a JPEG's pixels as stored; OpenCV turns them upright by EXIF orientation, and so
    does the detector's view: the boxes must turn too, or every face is a miss and a false positive."""
    from tests.test_scene_photo import with_exif_orientation

    root = _scene_folder(tmp_path)
    image = root / "images" / "s0.jpg"
    upright = cv2.imread(str(image))
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # EXIF 6: turn 90 degrees clockwise to view
    image.write_bytes(with_exif_orientation(cv2.imencode(".jpg", stored)[1].tobytes(), 6))
    xml = root / "annotations" / "s0.xml"
    text = xml.read_text().replace(
        "<width>300</width><height>120</height>", "<width>120</width><height>300</height>"
    )
    for x in (30, 125, 220):  # each face's upright box (x, 30, x + 60, 90) as the stored pixels have it
        upright_box = f"<xmin>{x}</xmin><ymin>30</ymin><xmax>{x + 60}</xmax><ymax>90</ymax>"
        stored_box = f"<xmin>30</xmin><ymin>{300 - x - 60}</ymin><xmax>90</xmax><ymax>{300 - x}</ymax>"
        text = text.replace(upright_box, stored_box)
    xml.write_text(text)
    detections = [(31, 30, 90, 90), (127, 31, 185, 90), (221, 30, 280, 90)]  # the upright faces
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([detections]))
    assert _run([str(root), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["detection"]["recall"] == 1.0 and report["detection"]["precision"] == 1.0
    assert report["accuracy"] == 1.0
    assert report["annotation_fit"] == {"turned by EXIF orientation": 1}


def test_a_scene_resized_after_annotation_is_scored_on_scaled_boxes(tmp_path, monkeypatch, capsys):
    root = _scene_folder(tmp_path)
    xml = root / "annotations" / "s0.xml"
    xml.write_text(
        xml.read_text().replace(
            "<width>300</width><height>120</height>", "<width>600</width><height>240</height>"
        )
    )
    text = xml.read_text()
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        text = re.sub(f"<{tag}>(\\d+)</{tag}>", lambda m, t=tag: f"<{t}>{2 * int(m.group(1))}</{t}>", text)
    xml.write_text(text)
    detections = [(31, 30, 90, 90), (127, 31, 185, 90), (221, 30, 280, 90)]
    monkeypatch.setattr(evaluate, "_detector", lambda config: ScriptedDetector([detections]))
    assert _run([str(root), "--model", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    assert "detection at IoU 0.5: recall 1.000 of 3 faces, precision 1.000 of 3 detections" in out
    assert "scenes whose <size> is not their photo's: rescaled 1" in out


def test_a_gif_face_is_read_and_classified(tmp_path, capsys):
    import shutil

    (tmp_path / "with_mask").mkdir()
    shutil.copy(Path(__file__).parent / "data" / "with_mask_red.gif", tmp_path / "with_mask" / "a.gif")
    _write(tmp_path / "without_mask" / "b.png", color_image("without_mask", 64, 64))
    assert _run([str(tmp_path), "--model", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 2 and report["accuracy"] == 1.0 and report["unreadable"]["count"] == 0
