"""Training the face verifier: how candidates are labelled, the scene split, and a whole tiny run.

The run trains for one epoch on crops generated here (the astronaut with and without drawn masks, and
background patches), converts to int8 and writes the sidecar: it checks the plumbing, not accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from bench.detector_data import split_scenes
from edge.preprocess import crop_face
from train.verifier_data import CropSet, _label_candidates

FACE = (100.0, 100.0, 200.0, 200.0)


def test_candidates_are_labelled_by_overlap_with_the_faces():
    boxes = [
        (102, 98, 204, 196),  # the face
        (400, 400, 480, 480),  # far from it
        (110, 110, 160, 160),  # its upper left quarter: a part
        (60, 60, 190, 190),  # overlapping, neither: left out
    ]
    assert _label_candidates(boxes, [FACE]).tolist() == [1, 0, 2, -1]
    assert _label_candidates(boxes, []).tolist() == [0, 0, 0, 0]
    assert _label_candidates([], [FACE]).tolist() == []


def test_the_scene_split_is_seeded_by_image_and_halves_the_set():
    names = [f"scene{i}.jpg" for i in range(11)]
    split = split_scenes(names)
    assert split == split_scenes(list(reversed(names)))
    assert sorted(split) == sorted(names)
    assert list(split.values()).count("train") == 5
    assert split != split_scenes(names, seed=1)


@pytest.mark.slow
@pytest.mark.workstation
def test_a_tiny_training_run_writes_a_model_the_edge_loads(tmp_path):
    pytest.importorskip("keras")
    from edge.verifier import FaceVerifier
    from tests.fixtures import entrance_frame
    from train.verifier import SPEC, export, fit, split

    rng = np.random.default_rng(0)
    crops, labels = [], []
    for i, placement in enumerate([None, "correct", "on_chin"] * 6):
        frame, face = entrance_frame(placement, face_px=float(rng.uniform(80, 160)), seed=i)
        crops.append(crop_face(frame, face.box, SPEC))
        labels.append(1)
    coffee = np.ascontiguousarray(skimage.data.coffee()[:, :, ::-1])
    for _ in range(18):
        x, y, side = rng.uniform(0, 300), rng.uniform(0, 200), rng.uniform(40, 150)
        crops.append(crop_face(coffee, (x, y, x + side, y + side), SPEC))
        labels.append(0)
    n = len(crops)
    data = CropSet(
        np.array(crops, np.uint8),
        np.array(labels, np.int64),
        ["composed"] * n,
        [f"g{i % 9}" for i in range(n)],
        np.full(n, 0.4, np.float32),
        np.full(n, 100.0, np.float32),
    )
    val = split(data.groups, fraction=0.3)
    model = fit(data, val, epochs=1, batch_size=16)
    out = tmp_path / "face_verifier.tflite"
    meta = export(model, data, val, out, {"note": "tiny"})
    verifier = FaceVerifier(out)
    assert verifier.metadata.threshold == meta.threshold
    assert verifier.metadata.training["note"] == "tiny"
    scores = verifier.score_crops(data.crops[:4])
    assert scores.shape == (4,) and ((scores >= 0) & (scores <= 1)).all()


def _scene_folder(root, count: int):
    import cv2

    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()
    for i in range(count):
        cv2.imwrite(str(root / "images" / f"s{i}.jpg"), np.zeros((60, 80, 3), np.uint8))
        (root / "annotations" / f"s{i}.xml").write_text(
            f"<annotation><filename>s{i}.jpg</filename><size><width>80</width><height>60</height></size>"
            "<object><name>with_mask</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>40</xmax>"
            "<ymax>50</ymax></bndbox></object></annotation>"
        )


def test_the_scene_choices_are_the_split_halves_or_every_scene(tmp_path):
    from bench.detector_data import chosen_scenes

    _scene_folder(tmp_path / "scenes", 9)
    names = {c: [s.image.name for s in chosen_scenes(tmp_path, c)] for c in ("train", "eval", "all")}
    split = split_scenes(names["all"])
    assert len(names["all"]) == 9 and names["all"] == sorted(names["all"])
    assert names["train"] == [n for n in names["all"] if split[n] == "train"]
    assert names["eval"] == [n for n in names["all"] if split[n] == "eval"]
    assert len(names["train"]) == 4 and not set(names["train"]) & set(names["eval"])
    with pytest.raises(ValueError, match="train"):
        chosen_scenes(tmp_path, "both")


def test_mined_crops_are_cached_apart_for_each_scene_choice():
    from train.verifier import cache_path

    paths = {scenes: cache_path(4000, scenes) for scenes in ("train", "eval", "all")}
    assert len(set(paths.values())) == 3
    assert cache_path(4000, "all") == paths["all"] != cache_path(2000, "all")


def test_mining_at_another_fine_size_or_with_lamps_is_cached_apart_from_the_shipped_data():
    from train.verifier import cache_path

    shipped = cache_path(4000, "train")
    assert shipped.name == "crops_48_eac5031244.npz"  # the key the shipped verifier's crops were cached under
    others = {cache_path(4000, "train", fine_size=320), cache_path(4000, "train", lamps_p=0.3)}
    assert len(others) == 2 and shipped not in others


def test_lamps_are_drawn_into_composed_frames_only_when_asked_and_never_over_a_face():
    import random

    from train.verifier_data import _compose

    face = np.ascontiguousarray(skimage.data.astronaut()[30:230, 140:320, ::-1])
    sources = [(face, (20.0, 20.0, 160.0, 180.0), "astronaut")]
    pool = [np.full((480, 640, 3), 90, np.uint8)]
    for seed in range(4):
        frame, boxes, groups, lamps = _compose(sources, pool, random.Random(seed), lamps_p=0.0)
        assert lamps == [] and groups == ["astronaut"]
        frame, boxes, groups, lamps = _compose(sources, pool, random.Random(seed), lamps_p=1.0)
        assert lamps, "every frame gets lamps at lamps_p 1"
        for lx1, ly1, lx2, ly2 in lamps:
            x1, y1, x2, y2 = boxes[0]
            assert lx2 <= x1 or x2 <= lx1 or ly2 <= y1 or y2 <= ly1


def test_the_sidecar_says_which_scenes_and_mining_the_verifier_learnt_from():
    from types import SimpleNamespace

    from train.verifier import _command, _scenes_left_out

    def args(**given):
        return SimpleNamespace(
            **{
                "scenes": "train",
                "seed": 0,
                "mine_fine_size": 256,
                "lamps": 0.0,
                "width": 48,
                "input_size": 48,
                **given,
            }
        )

    assert _command(args(scenes="all")) == "python -m train.verifier --scenes all"
    assert _command(args(seed=2)).endswith("--scenes train --seed 2")
    assert _command(args(mine_fine_size=320, lamps=0.3)).endswith("--mine-fine-size 320 --lamps 0.3")
    assert _command(args(width=24)).endswith("--scenes train --width 24")
    assert _command(args(input_size=64)).endswith("--scenes train --input-size 64")
    assert "'eval' half" in _scenes_left_out("train") and "'train' half" in _scenes_left_out("eval")
    assert _scenes_left_out("all").startswith("none of the scene images")
    assert "close-ups use as backgrounds" in _scenes_left_out("all")
