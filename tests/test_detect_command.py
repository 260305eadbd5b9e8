"""`maskwatch detect`: real BlazeFace and a real TFLite classifier on photos written to disk.

The classifier is the committed colour model (tests/data/color_classifier.tflite), whose answer is the
dominant colour channel of the crop, so swapping the photo's channels picks the expected label. The
shipped mask classifier is tested too once models/mask_classifier.tflite exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main as cli_main
from edge.synth.scene import astronaut, entrance_background, place_face
from tests.daemon_scenes import CHANNELS, COLOR_MODEL, REPO, SHIPPED_MODEL

FACE_PX, FACE_CENTRE = 140.0, (320.0, 220.0)


def person_frame(label: str) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A 640x480 BGR entrance frame with one person whose colours make the colour model say `label`."""
    frame = entrance_background()
    placed = place_face(frame, astronaut(), FACE_PX, FACE_CENTRE)
    return np.ascontiguousarray(frame[:, :, CHANNELS[label]]), placed.box


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, dict[str, tuple]]:
    """A folder with one photo per label (one in a subfolder) and an empty corridor."""
    folder = tmp_path_factory.mktemp("photos")
    truth = {}
    for name, label in (
        ("a_mask.png", "with_mask"),
        ("b_nomask.png", "without_mask"),
        ("sub/c_wrong.png", "mask_weared_incorrect"),
    ):
        frame, box = person_frame(label)
        (folder / name).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / name), frame)
        truth[name] = (label, box)
    cv2.imwrite(str(folder / "d_empty.png"), entrance_background())
    return folder, truth


@pytest.fixture(scope="module")
def color_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(f"classifier:\n  model: {COLOR_MODEL}\n")
    return path


def run_json(capsys, *args: str) -> tuple[int, list[dict]]:
    status = cli_main(["detect", "--json", *args])
    out = capsys.readouterr().out
    return status, [json.loads(line) for line in out.splitlines()]


def iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_json_gives_one_line_per_image_with_each_face_labelled(capsys, photos, color_config):
    folder, truth = photos
    status, lines = run_json(capsys, "--config", str(color_config), str(folder))
    assert status == 0
    by_name = {Path(line["image"]).relative_to(folder).as_posix(): line for line in lines}
    assert sorted(by_name) == ["a_mask.png", "b_nomask.png", "d_empty.png", "sub/c_wrong.png"]
    assert by_name["d_empty.png"]["faces"] == []
    for name, (label, box) in truth.items():
        line = by_name[name]
        assert (line["width"], line["height"]) == (640, 480)
        (face,) = line["faces"]
        assert set(face) >= {"box", "label", "score", "scores", "keypoints"}
        assert face["label"] == label, name
        assert face["score"] == max(face["scores"].values()) and sum(
            face["scores"].values()
        ) == pytest.approx(1, abs=0.01)
        assert iou(face["box"], box) > 0.6, (face["box"], box)
        assert len(face["keypoints"]) == 6 and all(len(point) == 2 for point in face["keypoints"])


def test_an_image_given_by_path_is_reported_by_that_path(capsys, photos, color_config):
    folder, _ = photos
    image = folder / "b_nomask.png"
    status, (line,) = run_json(capsys, "--config", str(color_config), str(image))
    assert status == 0 and line["image"] == str(image) and line["faces"][0]["label"] == "without_mask"


def test_annotate_writes_each_image_with_its_boxes_drawn(capsys, photos, color_config, tmp_path):
    folder, truth = photos
    status = cli_main(["detect", "--config", str(color_config), "--annotate", str(tmp_path), str(folder)])
    out = capsys.readouterr().out
    assert status == 0
    assert "d_empty.png (640x480): 0 faces" in out and "without_mask" in out
    for name, (_, box) in truth.items():
        original, drawn = cv2.imread(str(folder / name)), cv2.imread(str(tmp_path / name))
        assert drawn is not None and drawn.shape == original.shape, name
        changed = np.any(drawn != original, axis=2)
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        assert changed[y1 - 15 : y2 + 15, x1 - 15 : x2 + 15].sum() > 200, "no box drawn around the face"
        outside = changed.copy()
        outside[y1 - 40 : y2 + 40, x1 - 40 :] = False  # the box, and its label which may run to the right
        assert outside.sum() == 0, "drawn away from the face"
    empty = cv2.imread(str(tmp_path / "d_empty.png"))
    assert np.array_equal(empty, cv2.imread(str(folder / "d_empty.png")))


def test_annotated_images_with_the_same_name_do_not_replace_each_other(
    capsys, photos, color_config, tmp_path
):
    folder, _ = photos
    other = tmp_path / "other"
    other.mkdir()
    cv2.imwrite(str(other / "a_mask.png"), entrance_background())  # same name, another photo
    out_dir = tmp_path / "annotated"
    args = ["detect", "--config", str(color_config), "--annotate", str(out_dir)]
    assert cli_main([*args, str(folder / "a_mask.png"), str(other / "a_mask.png")]) == 0
    capsys.readouterr()
    assert cv2.imread(str(out_dir / "a_mask.png")).shape == cv2.imread(str(folder / "a_mask.png")).shape
    assert np.array_equal(cv2.imread(str(out_dir / "a_mask-2.png")), entrance_background())
    assert np.any(cv2.imread(str(out_dir / "a_mask.png")) != cv2.imread(str(folder / "a_mask.png")))


def test_unreadable_images_are_reported_and_the_rest_still_run(capsys, photos, color_config, tmp_path):
    folder, _ = photos
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    status = cli_main(
        ["detect", "--json", "--config", str(color_config), str(broken), str(folder / "a_mask.png")]
    )
    captured = capsys.readouterr()
    assert status == 1
    assert f"cannot read image {broken}" in captured.err
    (line,) = [json.loads(text) for text in captured.out.splitlines()]
    assert line["faces"][0]["label"] == "with_mask"


def test_a_missing_input_is_an_error_before_any_model_loads(capsys, tmp_path):
    assert cli_main(["detect", str(tmp_path / "nope.jpg")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_a_missing_classifier_names_the_file(capsys, photos, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"classifier:\n  model: {tmp_path / 'absent.tflite'}\n")
    assert cli_main(["detect", "--config", str(config), str(photos[0])]) == 2
    assert "absent.tflite" in capsys.readouterr().err


def test_the_config_detector_settings_are_used(capsys, photos, tmp_path):
    """An impossible score threshold in the config leaves no face: the command uses the run's settings.
    (The face verifier would take back a face scoring between verifier_floor and the threshold.)"""
    config = tmp_path / "config.yaml"
    config.write_text(
        "detector:\n  score_threshold: 0.99\n  fine_score_threshold: 0.99\n  verifier: false\n"
        f"classifier:\n  model: {COLOR_MODEL}\n"
    )
    status, (line,) = run_json(capsys, "--config", str(config), str(photos[0] / "a_mask.png"))
    assert status == 0 and line["faces"] == []


def test_the_fine_pass_looks_for_small_faces_only_within_the_config_roi(capsys, tmp_path):
    """As in the daemon: a small face far left of decision.roi is not looked for, and is not reported."""
    frame = entrance_background()
    place_face(frame, astronaut(), 60.0, (90.0, 220.0))  # 60 px: too small for the coarse pass
    cv2.imwrite(str(tmp_path / "small.png"), frame)
    config = tmp_path / "config.yaml"
    config.write_text(f"classifier:\n  model: {COLOR_MODEL}\n")
    status, (line,) = run_json(capsys, "--config", str(config), str(tmp_path / "small.png"))
    assert status == 0 and len(line["faces"]) == 1
    config.write_text(f"classifier:\n  model: {COLOR_MODEL}\ndecision:\n  roi: [0.5, 0.0, 1.0, 1.0]\n")
    status, (line,) = run_json(capsys, "--config", str(config), str(tmp_path / "small.png"))
    assert status == 0 and line["faces"] == []


@pytest.mark.skipif(not SHIPPED_MODEL.is_file(), reason="the shipped classifier is not built yet")
def test_the_shipped_model_labels_an_unmasked_face(capsys, tmp_path):
    frame = entrance_background()
    place_face(frame, astronaut(), FACE_PX, FACE_CENTRE)
    cv2.imwrite(str(tmp_path / "person.png"), frame)
    config = tmp_path / "config.yaml"
    config.write_text("detector:\n  threads: 2\n")  # defaults: the shipped model
    status, (line,) = run_json(capsys, "--config", str(config), str(tmp_path / "person.png"))
    assert status == 0
    (face,) = line["faces"]
    assert face["label"] == "without_mask" and face["score"] > 0.5


def test_a_gif_is_read_and_its_drawing_saved_as_png(capsys, color_config, tmp_path):
    """OpenCV 4.6 (the Pi's) neither reads GIF with imread nor writes it at all."""
    gif = Path(__file__).parent / "data" / "with_mask_red.gif"
    status, (line,) = run_json(capsys, "--config", str(color_config), "--annotate", str(tmp_path), str(gif))
    assert status == 0
    assert (line["image"], line["width"], line["height"]) == (str(gif), 64, 64)
    drawn = cv2.imread(str(tmp_path / "with_mask_red.png"))
    assert drawn is not None and tuple(int(v) for v in drawn[32, 32]) == (40, 40, 220)


def test_hidden_files_a_mac_leaves_in_a_folder_are_not_taken_for_photos(
    capsys, photos, color_config, tmp_path
):
    """A folder copied or unzipped from a Mac holds `._x.jpg` resource forks and `__MACOSX/`: not photos."""
    folder = tmp_path / "from_a_mac"
    (folder / "__MACOSX").mkdir(parents=True)
    cv2.imwrite(str(folder / "x.png"), cv2.imread(str(photos[0] / "a_mask.png")))
    for fork in (folder / "._x.png", folder / "__MACOSX" / "._x.png"):
        fork.write_bytes(b"\x00\x05\x16\x07 resource fork")
    status, lines = run_json(capsys, "--config", str(color_config), str(folder))
    assert status == 0, capsys.readouterr().err
    assert [line["image"] for line in lines] == [str(folder / "x.png")]


def test_linked_folders_are_followed_without_looping(capsys, photos, color_config, tmp_path):
    folder = tmp_path / "album"
    folder.mkdir()
    (folder / "trip").symlink_to(photos[0] / "sub", target_is_directory=True)
    (folder / "back_up").symlink_to(folder, target_is_directory=True)  # a link back up the tree
    status, lines = run_json(capsys, "--config", str(color_config), str(folder))
    assert status == 0
    assert [line["image"] for line in lines] == [str(folder / "trip" / "c_wrong.png")]


def test_a_folder_without_photos_alone_is_an_error_before_any_model_loads(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("no photos here")
    assert cli_main(["detect", "--config", str(tmp_path / "no-config-needed.yaml"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"no images in {tmp_path}" in err and ".jpg" in err


def test_missing_inputs_and_empty_folders_are_reported_and_the_rest_still_run(
    capsys, photos, color_config, tmp_path
):
    empty = tmp_path / "empty"
    empty.mkdir()
    status = cli_main(
        ["detect", "--json", "--config", str(color_config), str(tmp_path / "nope.jpg"), str(empty),
         str(photos[0] / "a_mask.png")]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert status == 1, "something the user asked for was not done"
    assert f"no such file or folder: {tmp_path / 'nope.jpg'}" in captured.err
    assert f"no images in {empty}" in captured.err
    (line,) = [json.loads(text) for text in captured.out.splitlines()]
    assert line["image"] == str(photos[0] / "a_mask.png") and line["faces"][0]["label"] == "with_mask"


def test_an_image_given_twice_is_read_and_drawn_once(capsys, photos, color_config, tmp_path):
    folder, _ = photos
    status, lines = run_json(
        capsys,
        "--config",
        str(color_config),
        "--annotate",
        str(tmp_path),
        str(folder),
        str(folder / "a_mask.png"),
    )
    assert status == 0
    images = [line["image"] for line in lines]
    assert images.count(str(folder / "a_mask.png")) == 1 and len(images) == 4
    assert not (tmp_path / "a_mask-2.png").exists()


def test_annotate_into_a_file_or_below_one_is_an_error_before_any_model_loads(capsys, photos, tmp_path):
    not_a_folder = tmp_path / "taken"
    not_a_folder.write_text("a file")
    args = ["detect", "--config", str(tmp_path / "unread.yaml"), "--annotate", str(not_a_folder)]
    assert cli_main([*args, str(photos[0] / "a_mask.png")]) == 2
    assert f"--annotate {not_a_folder}: it is a file" in capsys.readouterr().err
    below_a_file = not_a_folder / "annotated"  # no folder can be made there (nor in a read-only one)
    args = ["detect", "--config", str(tmp_path / "unread.yaml"), "--annotate", str(below_a_file)]
    assert cli_main([*args, str(photos[0] / "a_mask.png")]) == 2
    assert f"--annotate {below_a_file}: cannot make the folder: Not a directory" in capsys.readouterr().err


def test_annotate_never_replaces_a_photo_it_reads(capsys, photos, color_config, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    original = cv2.imread(str(photos[0] / "a_mask.png"))
    cv2.imwrite(str(folder / "a_mask.png"), original)
    stored = (folder / "a_mask.png").read_bytes()
    args = ["detect", "--config", str(color_config), "--annotate", str(folder)]
    assert cli_main([*args, str(folder)]) == 2
    assert f"would replace {folder / 'a_mask.png'}" in capsys.readouterr().err
    assert (folder / "a_mask.png").read_bytes() == stored and sorted(folder.iterdir()) == [
        folder / "a_mask.png"
    ]


def test_annotated_copies_inside_the_photo_folder_are_not_read_as_photos_next_time(
    capsys, photos, color_config, tmp_path
):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_mask.png"), cv2.imread(str(photos[0] / "a_mask.png")))
    args = ["--config", str(color_config), "--annotate", str(folder / "annotated"), str(folder)]
    for _ in range(2):
        status, lines = run_json(capsys, *args)
        assert status == 0 and [line["image"] for line in lines] == [str(folder / "a_mask.png")]
    assert (folder / "annotated" / "a_mask.png").is_file()


def test_a_photo_in_a_format_opencv_cannot_write_is_drawn_as_png(capsys, photos, color_config, tmp_path):
    """OpenCV reads .jfif (JPEG) but has no writer for the name; 4.6 has none for .gif or a name with no suffix."""
    folder = tmp_path / "in"
    folder.mkdir()
    jpeg = cv2.imencode(".jpg", cv2.imread(str(photos[0] / "a_mask.png")))[1].tobytes()
    (folder / "phone.jfif").write_bytes(jpeg)
    (folder / "no_suffix").write_bytes(jpeg)
    out = tmp_path / "out"
    status, lines = run_json(
        capsys,
        "--config",
        str(color_config),
        "--annotate",
        str(out),
        str(folder / "phone.jfif"),
        str(folder / "no_suffix"),
    )
    assert status == 0 and [line["faces"][0]["label"] for line in lines] == ["with_mask", "with_mask"]
    assert sorted(p.name for p in out.iterdir()) == ["no_suffix.png", "phone.png"]
    assert all(cv2.imread(str(p)).shape == (480, 640, 3) for p in out.iterdir())


def test_file_names_that_are_not_utf8_are_read_and_drawn(photos, color_config, tmp_path):
    """A name from an old camera card or a zip: OpenCV's own file functions crash the process on it
    (a segfault), so this runs in a child."""
    folder = tmp_path / "card"
    folder.mkdir()
    name = os.fsdecode(b"IMG_\xe9t\xe9 1.png")  # Latin-1 bytes: not valid UTF-8
    (folder / name).write_bytes((photos[0] / "a_mask.png").read_bytes())
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "edge", "detect", "--json", "--config", str(color_config), "--annotate", str(out),
         str(folder)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert line["faces"][0]["label"] == "with_mask"
    assert cv2.imdecode(np.fromfile(out / name, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)


def test_a_corrupt_detector_model_is_an_error_not_a_traceback(
    capsys, photos, color_config, tmp_path, monkeypatch
):
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models)
    short_range = models / "detector" / "face_detection_short_range.tflite"
    short_range.write_bytes(short_range.read_bytes()[:4000])  # cut short, as by a full disk
    monkeypatch.setenv("MASKWATCH_MODELS_DIR", str(models))
    assert cli_main(["detect", "--config", str(color_config), str(photos[0] / "a_mask.png")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
