"""Drawn masks for training (train/synth.py): placements the photo cannot show are not drawn."""

from __future__ import annotations

from edge.synth.masks import PLACEMENTS_INCORRECT, visible_share
from tests.fixtures import astronaut_face
from train.data import FaceRecord
from train.synth import synth_records


def _face() -> dict:
    face = astronaut_face()
    return {"box": list(face.box), "keypoints": [list(p) for p in face.keypoints], "score": 0.95}


def _sizes(face: dict) -> tuple[tuple[int, int], tuple[int, int]]:
    """(a photo that ends at the chin, as faces2's tight crops do; one with room below the face)."""
    (_, eye_r), (_, eye_l), _, (_, mouth) = face["keypoints"][:4]
    chin = mouth + 0.5 * (mouth - (eye_r + eye_l) / 2)
    width = int(face["box"][2]) + 20
    return (width, int(chin)), (width, int(2 * face["box"][3]))


def _unmasked(n: int) -> list[FaceRecord]:
    return [
        FaceRecord(key=f"faces2/without_mask/{i}.jpg", source="faces2", label="without_mask",
                   group=f"g{i}", image=f"faces2/without_mask/{i}.jpg")
        for i in range(n)
    ]  # fmt: skip


def test_a_mask_on_the_chin_of_a_crop_that_ends_at_the_chin_is_mostly_off_the_photo():
    face = _face()
    tight, roomy = _sizes(face)
    assert visible_share(face["keypoints"], face["box"], "on_chin", tight) < 0.5
    assert visible_share(face["keypoints"], face["box"], "on_chin", roomy) == 1.0
    for placement in ("correct", "below_nose", "mouth_only"):
        assert visible_share(face["keypoints"], face["box"], placement, tight) > 0.5, placement


def test_tight_crops_get_no_mask_on_the_chin_and_roomy_ones_every_placement():
    face = _face()
    tight, roomy = _sizes(face)
    records = _unmasked(200)

    def drawn(image_size) -> set[str]:
        keypoints = {r.key: {"faces": [face], "image_size": list(image_size)} for r in records}
        made = synth_records(records, keypoints, seed=0)
        assert sum(r.placement == "correct" for r in made) == len(
            records
        )  # every face keeps its correct mask
        return {r.placement for r in made if r.label == "mask_weared_incorrect"}

    assert drawn(tight) == set(PLACEMENTS_INCORRECT) - {"on_chin"}
    assert drawn(roomy) == set(PLACEMENTS_INCORRECT)


def test_a_keypoint_cache_without_image_sizes_draws_as_before():
    face = _face()
    records = _unmasked(200)
    made = synth_records(records, {r.key: {"faces": [face]} for r in records}, seed=0)
    assert {r.placement for r in made if r.label == "mask_weared_incorrect"} == set(PLACEMENTS_INCORRECT)
