"""`python -m train.keypoints` on a dataset of one's own: its unmasked faces get keypoints, so the mask
synthesizer draws on them as it does on the shared data's."""

from __future__ import annotations

import json

import cv2

from tests.fixtures import astronaut_face, masked
from train import keypoints, synth
from train.data import training_records


def test_unmasked_faces_of_ones_own_dataset_get_keypoints_and_masks_drawn_on_them(tmp_path):
    dataset = tmp_path / "front door"
    (dataset / "no_mask").mkdir(parents=True)
    (dataset / "Mask").mkdir()
    face = astronaut_face()
    x1, y1, x2, y2 = (int(v) for v in face.box)
    pad = (y2 - y1) // 2
    crop = face.image[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]  # a loose face crop
    cv2.imwrite(str(dataset / "no_mask" / "astronaut.png"), crop)
    worn = masked("correct").image[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
    cv2.imwrite(str(dataset / "Mask" / "astronaut.png"), worn)
    cache = tmp_path / "keypoints.json"

    assert keypoints.main(["--data", str(dataset), "--out", str(cache)]) == 0

    found = json.loads(cache.read_text())
    assert set(found) == {"front door:no_mask/astronaut.png"}, "only unmasked faces are drawn on"
    (detected,) = found["front door:no_mask/astronaut.png"]["faces"]
    assert len(detected["keypoints"]) == 6
    records, _, _ = training_records([dataset])
    drawn = synth.synth_records(records, found, seed=0)
    assert drawn and {r.label for r in drawn} >= {"with_mask"}
    assert all(r.source == "synth:front door" for r in drawn)
