"""A whole training run on a tiny dataset generated here: the pipeline runs and writes its folder.

The dataset copies the shared data's layout (faces2 with groups.csv, VOC scenes, MaskedFace-Net style
folders with faces.csv) from one skimage photo, with masks drawn by edge/synth/masks.py. Random weights,
a 32 px input and one epoch per phase: this checks the plumbing, not accuracy.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.workstation]

pytest.importorskip("keras")
skimage_data = pytest.importorskip("skimage.data")

from edge.synth.geometry import keypoints_from_box  # noqa: E402
from edge.synth.masks import draw_mask  # noqa: E402
from train.fit import FitConfig  # noqa: E402
from train.run import RunOptions, train_model  # noqa: E402

FACE_BOX = (175.0, 75.0, 270.0, 185.0)  # the astronaut's face in skimage.data.astronaut()


def _variant(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gain = rng.uniform(0.7, 1.3, size=3)
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def _write_dataset(root: Path, rng: np.random.Generator) -> dict:
    scene = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    keypoints = keypoints_from_box(FACE_BOX).tolist()
    x1, y1, x2, y2 = (int(v) for v in FACE_BOX)
    pad = 30
    crop_box = (x1 - pad, y1 - pad, x2 + pad, y2 + pad)
    local_box = (pad, pad, pad + x2 - x1, pad + y2 - y1)
    local_points = [[x - crop_box[0], y - crop_box[1]] for x, y in keypoints]
    found = {}

    def face(placement: str | None) -> np.ndarray:
        image = _variant(scene, rng)
        if placement:
            image = draw_mask(image, keypoints, FACE_BOX, placement, rng)
        return image

    groups = [["path", "label", "group", "identity", "links", "source_file"]]
    for label, placement in (("with_mask", "correct"), ("without_mask", None)):
        (root / "faces2" / label).mkdir(parents=True)
        for i in range(8):
            image = face(placement)[crop_box[1] : crop_box[3], crop_box[0] : crop_box[2]]
            path = f"faces2/{label}/{i}.jpg"
            cv2.imwrite(str(root / path), image)
            groups.append([path, label, f"{label}{i // 2}", "", "", f"{i}.jpg"])
            if label == "without_mask":
                found[path] = {
                    "faces": [{"box": list(local_box), "score": 0.9, "keypoints": local_points}],
                    "image_size": [image.shape[1], image.shape[0]],
                }
    with open(root / "faces2" / "groups.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(groups)

    (root / "scenes" / "images").mkdir(parents=True)
    (root / "scenes" / "annotations").mkdir()
    labels = ["with_mask", "without_mask", "mask_weared_incorrect"]
    for i in range(9):
        label = labels[i % 3]
        placement = {"with_mask": "correct", "without_mask": None, "mask_weared_incorrect": "below_nose"}[
            label
        ]
        cv2.imwrite(str(root / "scenes" / "images" / f"s{i}.jpg"), face(placement))
        (root / "scenes" / "annotations" / f"s{i}.xml").write_text(
            f"<annotation><filename>s{i}.jpg</filename><size><width>512</width><height>512</height></size>"
            f"<object><name>{label}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            "</annotation>"
        )
        if label == "without_mask":
            found[f"scenes/images/s{i}.jpg#0"] = {
                "faces": [{"box": list(FACE_BOX), "score": 0.9, "keypoints": keypoints}],
                "image_size": [512, 512],
            }
    (root / "scenes" / "near_duplicate_groups.csv").write_text(
        "image,group\nscenes/images/s0.jpg,s0\nscenes/images/s3.jpg,s0\n"
    )

    rows = [["path", "label3", "folder", "face_id", "subtype", "source", "source_file"]]
    for folder, label, placement in (
        ("correct", "with_mask", "correct"),
        ("incorrect", "mask_weared_incorrect", "on_chin"),
    ):
        (root / "synthetic_masked" / folder).mkdir(parents=True)
        for i in range(6):
            path = f"synthetic_masked/{folder}/{i:05d}_x.jpg"
            image = cv2.resize(
                face(placement)[crop_box[1] : crop_box[3], crop_box[0] : crop_box[2]], (64, 64)
            )
            cv2.imwrite(str(root / path), image)
            rows.append([path, label, folder, f"{i:05d}", folder, "test", path])
    with open(root / "synthetic_masked" / "faces.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return found


def _tiny_run(tmp_path: Path, **overrides) -> RunOptions:
    """Options for a run on the tiny dataset, written under tmp_path: random weights, 32 px, 1+1 epochs."""
    data = tmp_path / "data"
    keypoints = _write_dataset(data, np.random.default_rng(0))
    (tmp_path / "keypoints.json").write_text(json.dumps(keypoints))
    options = RunOptions(
        data_root=data,
        out_dir=tmp_path / "run",
        weights_path=None,
        keypoints_path=tmp_path / "keypoints.json",
        fit=FitConfig(input_size=32, batch_size=8, head_epochs=1, finetune_epochs=1, finetune_from_block=15),
        val_fraction=0.3,
        cache_dir=tmp_path / "cache",
    )
    return dataclasses.replace(options, **overrides)


def test_tiny_training_run_writes_its_folder(tmp_path):
    options = _tiny_run(tmp_path)
    summary = train_model(options)
    out = tmp_path / "run"
    for name in (
        "model.keras", "training_summary.json", "split_train.json", "split_val.json", "metrics.json",
        "per_size_metrics.json", "classification_report.txt", "confusion_matrix.png", "training_curves.png",
        "validation.npz", "representative.npz",
    ):  # fmt: skip
        assert (out / name).is_file(), name
    assert summary["data"]["synthesized"] > 0
    assert summary["preprocess"]["input_size"] == 32
    assert summary["augment"]["loose_p"] == options.augment.loose_p  # the recipe travels with the run
    val = np.load(out / "validation.npz")
    assert val["crops"].shape[1:] == (32, 32, 3) and val["crops"].dtype == np.uint8
    train_groups = {r["group"] for r in json.loads((out / "split_train.json").read_text())}
    assert not train_groups & {r["group"] for r in json.loads((out / "split_val.json").read_text())}


def test_a_held_out_source_is_kept_out_of_training_and_scored_as_unseen(tmp_path):
    options = _tiny_run(tmp_path, held_out_sources=("scenes",))
    summary = train_model(options)
    out = tmp_path / "run"
    used = json.loads((out / "split_train.json").read_text()) + json.loads(
        (out / "split_val.json").read_text()
    )
    assert not [r for r in used if r["source"] in ("scenes", "synth:scenes")]
    assert any(r["source"] == "synth:faces2" for r in used)  # masks drawn on other sources stay
    held = json.loads((out / "held_out" / "metrics.json").read_text())
    assert held["all"]["n"] == summary["held_out"]["faces"] == 9  # every scene box, real faces only
    assert set(held["by_source"]) == {"scenes"}

    from train.held_out_report import load_held_out_faces

    saved = load_held_out_faces(out, options.data_root, options.keypoints_path)
    (out / "held_out" / "records.json").unlink()  # a run from before records.json: rebuilt from the data
    rebuilt = load_held_out_faces(out, options.data_root, options.keypoints_path)
    assert len(saved.labels) == 9
    assert saved.labels.tolist() == rebuilt.labels.tolist()
    assert saved.face_px.tolist() == rebuilt.face_px.tolist()


def test_the_drawn_mask_ablation_still_cleans_faces2_but_draws_nothing(tmp_path):
    from train.run import build_records

    options = _tiny_run(tmp_path)
    with_drawn, notes = build_records(options)
    without_drawn, ablation_notes = build_records(dataclasses.replace(options, draw_masks=False))
    assert notes["synthesized"] > 0 and any(r.source.startswith("synth:") for r in with_drawn)
    assert ablation_notes["synthesized"] == 0 and not any(
        r.source.startswith("synth:") for r in without_drawn
    )
    assert ablation_notes["cleaning"] is not None


def test_the_command_line_sets_the_contract_margin_and_the_shares_of_loose_and_tight_crops(tmp_path):
    from train.__main__ import build_parser, options_from_args

    def options(*flags: str):
        return options_from_args(
            build_parser().parse_args(["--out", str(tmp_path), "--random-init", "--no-synth", *flags])
        )

    chosen = options("--crop-margin", "0.1", "--loose-crop-p", "0.5", "--tight-crop-p", "0.25")
    assert chosen.crop_margin == 0.1 and chosen.augment.loose_p == 0.5 and chosen.augment.tight_p == 0.25
    default = options()
    assert default.crop_margin == 0.2 and default.augment.loose_p == 0.3  # the shipped model's recipe
    with pytest.raises(SystemExit, match="--loose-crop-p must be in"):
        options("--loose-crop-p", "1.5")
    with pytest.raises(SystemExit, match=r"--tight-crop-p must be in \[0, 0.7\] \(1 - --loose-crop-p\)"):
        options("--tight-crop-p", "0.8")


def test_the_command_line_names_teacher_runs_and_refuses_a_folder_without_a_model(tmp_path):
    from train.__main__ import build_parser, options_from_args

    def options(*flags: str):
        return options_from_args(
            build_parser().parse_args(["--out", str(tmp_path), "--random-init", "--no-synth", *flags])
        )

    assert options().teachers == ()
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    with pytest.raises(SystemExit, match=r"--teacher .*teacher: no model.keras there"):
        options("--teacher", str(teacher))
    (teacher / "model.keras").write_bytes(b"")
    chosen = options("--teacher", str(teacher), "--teacher", str(teacher), "--distill-weight", "0.3")
    assert chosen.teachers == (teacher, teacher) and chosen.fit.distill_weight == 0.3
    with pytest.raises(SystemExit, match=r"--distill-weight must be in \[0, 1\], got 1.5"):
        options("--distill-weight", "1.5")
    # a teacher trained with another seed on the student's split and drawn masks
    assert options("--seed", "3").seed_of_data == 3
    assert options("--seed", "1", "--data-seed", "0").seed_of_data == 0


def test_a_student_run_trains_with_a_teacher_run_and_records_it(tmp_path):
    teacher = train_model(_tiny_run(tmp_path / "teacher"))
    assert teacher["teachers"] == []
    student = train_model(_tiny_run(tmp_path / "student", teachers=(tmp_path / "teacher" / "run",)))
    assert student["teachers"] == [str(tmp_path / "teacher" / "run")]
    assert student["fit"]["distill_weight"] == 0.5
    assert (tmp_path / "student" / "run" / "model.keras").is_file()


def test_runs_that_share_a_data_seed_share_split_and_drawn_masks_whatever_their_own_seed(tmp_path):
    first = train_model(_tiny_run(tmp_path / "a"))
    options = _tiny_run(tmp_path / "b", data_seed=0)
    second = train_model(dataclasses.replace(options, fit=dataclasses.replace(options.fit, seed=7)))
    assert first["data_seed"] == second["data_seed"] == 0 and second["fit"]["seed"] == 7
    for name in ("split_train.json", "split_val.json"):  # same faces, same drawn masks, same sides
        assert (tmp_path / "a" / "run" / name).read_text() == (tmp_path / "b" / "run" / name).read_text()
    weights = [np.load(tmp_path / side / "run" / "validation_probabilities.npy") for side in "ab"]
    assert not np.allclose(*weights)  # another initialisation and batch order: another model


def _own_class_folders(root: Path, rng: np.random.Generator) -> None:
    """ROOT/<Mask|No Mask|incorrect>/<i>.jpg: distinct smooth pictures (no two are near duplicates)."""
    for name in ("Mask", "No Mask", "incorrect"):
        for i in range(6):
            coarse = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            (root / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(root / name / f"{i}.jpg"), cv2.resize(coarse, (48, 64), interpolation=cv2.INTER_CUBIC)
            )
    (root / "Mask" / "0.jpg").write_bytes(b"")  # an empty file: left out and counted
    (root / "Mask" / "README.txt").write_text("faces at the door")


def test_a_run_on_two_datasets_of_ones_own_with_the_same_file_names_writes_its_folder(tmp_path):
    """Two class-folder datasets, spaces in their paths: every readable face is trained or validated on,
    the left-out files are counted in the summary, and split_*.json resolve under the summary's data_root
    (what convert reads)."""
    rng = np.random.default_rng(0)
    first, second = tmp_path / "site a" / "door cam", tmp_path / "site b" / "door cam"
    _own_class_folders(first, rng)
    _own_class_folders(second, rng)
    options = _tiny_run(tmp_path, data_root=first, more_data=(second,), keypoints_path=None)
    summary = train_model(options)
    out = tmp_path / "run"
    rows = json.loads((out / "split_train.json").read_text()) + json.loads(
        (out / "split_val.json").read_text()
    )
    assert len(rows) == 2 * (18 - 1) and len({r["key"] for r in rows}) == len(rows)
    assert {r["source"] for r in rows} == {"site a/door cam", "site b/door cam"}
    assert all((Path(summary["data_root"]) / r["image"]).is_file() for r in rows)
    assert summary["datasets"] == [str(first), str(second)]
    assert summary["data"]["skipped"]["unreadable images"]["count"] == 2
    assert (
        summary["data"]["skipped"]["files that are no image (by suffix) or lie in no class folder"]["count"]
        == 2
    )
    assert set(summary["data"]["validation"]) >= {
        f"{source}/{label}" for source in ("site a/door cam",) for label in ("with_mask", "without_mask")
    }
    assert (out / "model.keras").is_file() and np.load(out / "representative.npz")["crops"].shape[0] > 0
