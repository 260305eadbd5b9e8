"""The split keeps groups together, is deterministic, and sends the scarce class to validation too."""

from __future__ import annotations

import dataclasses

import pytest

from train.data import CROSS_SOURCE_LINKS, FaceRecord, join_linked_groups, read_links
from train.splits import hold_out, split_records


def _records() -> list[FaceRecord]:
    records = []
    for g in range(60):
        for i in range(1 + g % 3):
            label = ("with_mask", "without_mask")[g % 2]
            records.append(
                FaceRecord(f"faces2/{label}/{g}_{i}.jpg", "faces2", label, f"faces2:g{g}", f"x{g}_{i}.jpg")
            )
    for scene in range(40):
        for box in range(3):
            label = "mask_weared_incorrect" if scene % 8 == 0 and box == 0 else "with_mask"
            records.append(
                FaceRecord(
                    f"scenes/{scene}.jpg#{box}",
                    "scenes",
                    label,
                    f"scenes:{scene // 2}",
                    f"scenes/{scene}.jpg",
                    (0, 0, 10, 10),
                    10,
                )
            )
    unmasked = [r for r in records if r.label == "without_mask"]
    synthesized = [
        dataclasses.replace(
            r, key=f"{r.key}@correct", source="synth:faces2", label="with_mask", placement="correct"
        )
        for r in unmasked
    ]
    return records + synthesized


def test_no_group_on_both_sides():
    train, val = split_records(_records(), val_fraction=0.25, seed=3)
    assert not {r.group for r in train} & {r.group for r in val}
    assert len(train) + len(val) == len(_records())


def test_split_is_deterministic_and_seeded():
    first = [r.key for r in split_records(_records(), seed=1)[1]]
    assert first == [r.key for r in split_records(_records(), seed=1)[1]]
    assert first != [r.key for r in split_records(_records(), seed=2)[1]]


def test_synthesized_faces_follow_their_source():
    train, val = split_records(_records(), seed=0)
    val_keys = {r.key for r in val}
    for record in val + train:
        if record.placement:
            source_key = record.key.split("@")[0]
            assert (source_key in val_keys) == (record.key in val_keys)


def test_rare_class_reaches_validation_in_proportion():
    _, val = split_records(_records(), val_fraction=0.2, seed=0)
    assert any(r.label == "mask_weared_incorrect" for r in val)


def test_val_fraction_is_roughly_kept_per_source():
    records = _records()
    _, val = split_records(records, val_fraction=0.2, seed=0)
    for source in ("faces2", "scenes"):
        total = sum(r.source == source for r in records)
        share = sum(r.source == source for r in val) / total
        assert 0.15 <= share <= 0.35


def test_holding_out_a_source_drops_the_masks_drawn_on_it_and_names_unknown_sources():
    records = [
        FaceRecord("a.jpg", "scenes", "without_mask", "g1", "a.jpg"),
        FaceRecord("a.jpg@correct", "synth:scenes", "with_mask", "g1", "a.jpg", placement="correct"),
        FaceRecord("b.jpg", "faces2", "without_mask", "g2", "b.jpg"),
        FaceRecord("b.jpg@correct", "synth:faces2", "with_mask", "g2", "b.jpg", placement="correct"),
    ]
    kept, held = hold_out(records, ("scenes",))
    assert [r.key for r in held] == ["a.jpg"]
    assert [r.key for r in kept] == ["b.jpg", "b.jpg@correct"]
    assert hold_out(records, ()) == (records, [])
    with pytest.raises(ValueError, match="scenez"):
        hold_out(records, ("scenez",))


def _copied_photo_records() -> list[FaceRecord]:
    """A web photo filed in faces2 that is also an andrewmvd scene (two faces), plus other faces."""
    records = [
        FaceRecord(
            "faces2/with_mask/web.jpg", "faces2", "with_mask", "faces2:g7", "faces2/with_mask/web.jpg"
        ),
        FaceRecord("scenes/images/s1.jpg#0", "scenes", "with_mask", "scenes:s1", "scenes/images/s1.jpg"),
        FaceRecord("scenes/images/s1.jpg#1", "scenes", "without_mask", "scenes:s1", "scenes/images/s1.jpg"),
    ]
    for i in range(30):
        records.append(FaceRecord(f"f{i}.jpg", "faces2", "without_mask", f"faces2:h{i}", f"f{i}.jpg"))
        records.append(FaceRecord(f"s{i}.jpg#0", "scenes", "with_mask", f"scenes:t{i}", f"s{i}.jpg"))
    return records


LINKS = [("faces2/with_mask/web.jpg", "scenes/images/s1.jpg")]


def test_a_photo_in_two_folders_keeps_its_copies_on_one_side_for_every_seed():
    records = join_linked_groups(_copied_photo_records(), LINKS)
    copies = {"faces2/with_mask/web.jpg", "scenes/images/s1.jpg#0", "scenes/images/s1.jpg#1"}
    for seed in range(20):
        _, val = split_records(records, val_fraction=0.3, seed=seed)
        assert len(copies & {r.key for r in val}) in (0, 3)


def test_joined_groups_do_not_depend_on_record_or_link_order():
    records = _copied_photo_records()
    joined = join_linked_groups(records, LINKS)
    reversed_links = [(b, a) for a, b in LINKS]
    again = join_linked_groups(records[::-1], reversed_links)[::-1]
    assert [r.group for r in joined] == [r.group for r in again]
    assert len({r.group for r in joined if r.image in LINKS[0]}) == 1


def test_holding_out_a_source_drops_its_copies_in_the_other_folders():
    records = join_linked_groups(_copied_photo_records(), LINKS)
    kept, held = hold_out(records, ("scenes",))
    assert "faces2/with_mask/web.jpg" not in {r.key for r in kept}
    assert {"scenes/images/s1.jpg#0", "scenes/images/s1.jpg#1"} <= {r.key for r in held}
    kept, held = hold_out(records, ("faces2",))
    assert not {"scenes/images/s1.jpg#0", "scenes/images/s1.jpg#1"} & {r.key for r in kept}
    assert "faces2/with_mask/web.jpg" in {r.key for r in held}


def test_the_shipped_links_join_images_of_two_folders():
    links = read_links(CROSS_SOURCE_LINKS)
    assert links
    for image, linked in links:
        assert image.split("/")[0] != linked.split("/")[0], (image, linked)
    assert len(set(links)) == len(links)
