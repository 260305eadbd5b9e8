"""`python -m train` on datasets of one's own: class folders and VOC scenes, several at once, with the
damage real folders carry. Each bad input is left out and counted by reason, or stops the run with a
message that names it and the fix; the split keeps near duplicates and paired photos together and
trains on every class, however few its photos."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.datasets import DatasetError
from train.data import FaceRecord, training_records
from train.splits import check_split, split_records


def _photo(seed: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """A smooth random picture (BGR): photos of different seeds never pass for near duplicates."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    return cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def _write(path: Path, image: np.ndarray, *params: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image, list(params))
    return path


def _class_folders(root: Path, names: dict[str, int], first_seed: int = 0) -> Path:
    """ROOT/<name>/<i>.jpg, `names[name]` distinct photos in each."""
    seed = first_seed
    for name, count in names.items():
        for i in range(count):
            _write(root / name / f"{i}.jpg", _photo(seed))
            seed += 1
    return root


def _read(*roots: Path):
    return training_records(
        list(roots), read_shared=lambda root, relabels: pytest.fail("not the shared layout")
    )


THREE = {"mask": 4, "no_mask": 4, "incorrect": 4}


@pytest.mark.parametrize(
    "names",
    [
        ("mask", "no_mask", "incorrect"),
        ("With_Mask", "Without_Mask", "Mask_Weared_Incorrect"),
        ("WithMask", "WithoutMask", "IncorrectMask"),
    ],
)
def test_a_class_folder_dataset_of_ones_own_trains_with_its_folder_names_in_any_spelling(tmp_path, names):
    root = _class_folders(tmp_path / "my faces", dict(zip(names, (3, 2, 1), strict=True)))
    records, base, skipped = _read(root)
    assert base == root and not skipped.counts()
    assert [r.label for r in records] == ["with_mask"] * 3 + ["without_mask"] * 2 + ["mask_weared_incorrect"]
    first = records[0]
    assert first.source == "my faces" and first.key == f"my faces:{names[0]}/0.jpg"
    assert (base / first.image).is_file() and first.box is None
    assert first.face_px == 64 and first.is_real  # the image height; real photos, like faces2 and scenes
    assert len({r.group for r in records}) == 6  # distinct photos: a group each


def test_unreadable_and_non_image_files_are_left_out_and_counted_by_reason(tmp_path, caplog):
    root = _class_folders(tmp_path / "data", THREE)
    (root / "mask" / "empty.jpg").write_bytes(b"")
    (root / "mask" / "junk.jpg").write_bytes(b"this is no JPEG" * 30)
    whole = cv2.imencode(".jpg", _photo(50))[1].tobytes()
    (root / "no_mask" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "no_mask" / "notes.txt").write_text("taken at the door")
    _write(root / "stray.jpg", _photo(51))  # an image in no class folder
    _write(root / "mask" / "person" / "deep" / "nested.jpg", _photo(52))
    grey16 = (np.linspace(0, 65535, 40 * 30).reshape(40, 30)).astype(np.uint16)
    _write(root / "incorrect" / "grey16.png", grey16)
    rgba = np.dstack([_photo(53, (40, 30)), np.full((40, 30), 128, np.uint8)])
    _write(root / "incorrect" / "alpha.png", rgba)
    _write(root / "incorrect" / "grey.png", cv2.cvtColor(_photo(54, (40, 30)), cv2.COLOR_BGR2GRAY))
    with caplog.at_level(logging.WARNING):
        records, _, skipped = _read(root)
    counts = skipped.counts()
    assert counts == {
        "files that are no image (by suffix) or lie in no class folder": 2,
        "unreadable images": 3,
    }
    examples = " ".join(skipped.to_dict()["unreadable images"]["examples"])
    assert all(name in examples for name in ("empty.jpg", "junk.jpg", "cut.jpg"))
    assert "left out 3: unreadable images" in caplog.text
    keys = {r.key for r in records}
    assert "data:mask/person/deep/nested.jpg" in keys
    assert {"data:incorrect/grey16.png", "data:incorrect/alpha.png", "data:incorrect/grey.png"} <= keys
    assert len(records) == 12 + 1 + 3


VOC = """<annotation><filename>{name}</filename><size><width>48</width><height>64</height></size>{objects}</annotation>"""
OBJECT = "<object><name>{}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>"


def _voc(root: Path, scenes: dict[str, str], seed: int = 100) -> Path:
    for i, (name, objects) in enumerate(scenes.items()):
        _write(root / "JPEGImages" / f"{name}.jpg", _photo(seed + i))
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{name}.xml").write_text(VOC.format(name=f"{name}.jpg", objects=objects))
    return root


def test_voc_scenes_of_ones_own_leave_out_what_cannot_be_used_and_count_it(tmp_path):
    root = _voc(
        tmp_path / "voc",
        {
            "a": OBJECT.format("face_with_mask", 2, 2, 20, 22) + OBJECT.format("No Mask", 40, 30, 80, 70),
            "b": OBJECT.format("incorrect", 10, 10, 30, 30) + OBJECT.format("hat", 1, 1, 9, 9),
            "c": OBJECT.format("mask", 100, 100, 140, 140) + OBJECT.format("mask", 5, 5, 6, 25),
        },
    )
    (root / "Annotations" / "gone.xml").write_text(
        VOC.format(name="gone.jpg", objects=OBJECT.format("mask", 1, 1, 9, 9))
    )
    (root / "Annotations" / "broken.xml").write_text("<annotation><object>")
    records, _, skipped = _read(root)
    assert [(r.key, r.label, r.box, r.face_px) for r in records] == [
        ("voc:JPEGImages/a.jpg#0", "with_mask", (2.0, 2.0, 20.0, 22.0), 20),
        ("voc:JPEGImages/a.jpg#1", "without_mask", (40.0, 30.0, 48.0, 64.0), 34),  # cut to the photo
        ("voc:JPEGImages/b.jpg#0", "mask_weared_incorrect", (10.0, 10.0, 30.0, 30.0), 20),
    ]
    assert {r.group for r in records[:2]} == {"voc:JPEGImages/a.jpg"}  # a scene's faces stay together
    counts = skipped.counts()
    assert counts == {
        "VOC annotations that are not valid XML or name an image that is not there": 2,
        "VOC objects that are no face label we know, difficult, or without a usable box": 2,  # hat, 1 px box
        "VOC boxes outside their photo": 1,
    }
    unusable = " ".join(
        skipped.to_dict()["VOC annotations that are not valid XML or name an image that is not there"][
            "examples"
        ]
    )
    assert "gone.xml" in unusable and "broken.xml" in unusable


def test_two_datasets_with_the_same_file_names_are_both_trained_on(tmp_path):
    first = _class_folders(tmp_path / "site a" / "faces", THREE, first_seed=0)
    second = _class_folders(tmp_path / "site b" / "faces", THREE, first_seed=100)
    records, base, _ = _read(first, second)
    assert base == tmp_path and len(records) == 24 and len({r.key for r in records}) == 24
    assert {r.source for r in records} == {"site a/faces", "site b/faces"}
    assert all((base / r.image).is_file() for r in records)
    same_name = [r for r in records if r.key.endswith(":mask/0.jpg")]
    assert len(same_name) == 2 and same_name[0].group != same_name[1].group


def test_each_dataset_is_a_source_named_by_its_folder_and_as_many_parents_as_tell_it_apart():
    from train.data import dataset_sources

    roots = [Path("/d/site a/door"), Path("/d/site b/door"), Path("/d/mine/scenes"), Path("/e/kaggle 12k")]
    assert dataset_sources(roots) == ["site a/door", "site b/door", "mine/scenes", "kaggle 12k"]


def test_a_dataset_given_twice_or_inside_another_stops_with_the_folders_named(tmp_path):
    root = _class_folders(tmp_path / "data", THREE)
    with pytest.raises(DatasetError, match="give each dataset folder once"):
        _read(root, root)
    with pytest.raises(DatasetError, match=r"data/mask .*give each dataset folder once|one holds the other"):
        _read(root, root / "mask")
    with pytest.raises(DatasetError, match="nope does not exist"):
        _read(tmp_path / "nope")
    (tmp_path / "faces.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(DatasetError, match=r"faces.zip is a file, not a dataset folder \(unpack"):
        _read(tmp_path / "faces.zip")


def test_a_folder_of_datasets_is_told_to_give_each_its_own_data_option(tmp_path):
    _class_folders(tmp_path / "all" / "kaggle", THREE)
    _voc(tmp_path / "all" / "scenes", {"a": OBJECT.format("mask", 2, 2, 20, 22)})
    with pytest.raises(DatasetError, match=r"holds datasets \(kaggle, scenes\).*--data .*kaggle --data"):
        _read(tmp_path / "all")


def test_near_duplicates_and_photos_with_a_pasted_mask_share_a_group_across_folders_and_datasets(tmp_path):
    root = _class_folders(tmp_path / "data", THREE, first_seed=0)
    face = _photo(77, (96, 80))
    masked = face.copy()
    masked[60:] = (230, 180, 120)  # a mask pasted over the lower face: the top is the same photo
    # No copy is exact, and each is near the photo by one measure only (the whole photo, the photo
    # mirrored, the top of a crop of another label): each rule's tolerance is what joins it.
    _write(root / "no_mask" / "p.jpg", face)
    _write(root / "mask" / "p-with-mask.jpg", masked[:-3])  # its bottom rows cut off too
    _write(root / "no_mask" / "p_copy.jpg", face[2:], cv2.IMWRITE_JPEG_QUALITY, 40)  # cut and re-encoded
    _write(root / "no_mask" / "p_mirrored.jpg", cv2.convertScaleAbs(face, alpha=1.1, beta=8)[:, ::-1])
    other = _class_folders(tmp_path / "other", {"no_mask": 1, "mask": 2, "incorrect": 1}, first_seed=50)
    _write(other / "no_mask" / "copied.png", face)  # the same photo in the second dataset
    records, _, _ = _read(root, other)
    group = {r.key: r.group for r in records}
    copies = ["data:no_mask/p.jpg", "data:mask/p-with-mask.jpg", "data:no_mask/p_copy.jpg",
              "data:no_mask/p_mirrored.jpg", "other:no_mask/copied.png"]  # fmt: skip
    assert len({group[key] for key in copies}) == 1
    assert len(set(group.values())) == len(records) - len(copies) + 1  # nothing else joined
    for seed in range(10):
        train, val = split_records(records, val_fraction=0.3, seed=seed)
        assert len({r.key for r in val} & set(copies)) in (0, len(copies))


def _own(label: str, i: int, source: str = "mine") -> FaceRecord:
    return FaceRecord(
        f"{source}:{label}/{i}.jpg", source, label, f"{source}:{label}/{i}.jpg", f"{label}/{i}.jpg"
    )


def test_a_class_with_a_single_photo_is_trained_on_not_only_validated():
    records = [_own("with_mask", i) for i in range(20)] + [_own("without_mask", i) for i in range(20)]
    records.append(_own("mask_weared_incorrect", 0))
    for seed in range(10):
        train, _ = split_records(records, val_fraction=0.2, seed=seed)
        assert any(r.label == "mask_weared_incorrect" for r in train), seed


def _scene_face(scene: int, index: int, label: str) -> FaceRecord:
    """Face `index` of VOC scene `scene` of one's own: the faces of one photo share its group."""
    return FaceRecord(f"mine:s{scene}.jpg#{index}", "mine", label, f"mine:s{scene}.jpg", f"s{scene}.jpg")


def test_every_class_of_ones_own_dataset_is_split_however_few_its_photos():
    records = [_own("with_mask", i) for i in range(40)] + [_own("without_mask", i) for i in range(2)]
    records += [_own("mask_weared_incorrect", i) for i in range(3)]
    # scenes: the rare classes' faces are in photos whose other faces are of the common class
    scenes = [_scene_face(i, 0, "with_mask") for i in range(40)]
    scenes += [_scene_face(i, 1, "without_mask") for i in range(3)]
    scenes += [_scene_face(i, 1, "mask_weared_incorrect") for i in range(3, 6)]
    for kind, data in (("class folders", records), ("scenes", scenes)):
        for seed in range(20):
            train, val = split_records(data, val_fraction=0.2, seed=seed)
            for label in ("without_mask", "mask_weared_incorrect"):
                assert any(r.label == label for r in train), (kind, seed, label)
                assert any(r.label == label for r in val), (kind, seed, label)


def test_a_missing_class_stops_with_the_fix_named():
    records = [_own("with_mask", i) for i in range(10)] + [_own("without_mask", i) for i in range(10)]
    train, val = split_records(records, val_fraction=0.2, seed=0)
    with pytest.raises(
        DatasetError, match=r"my data: no mask_weared_incorrect faces to train on.* \(incorrect/\)"
    ):
        check_split(train, val, "my data")


def test_too_few_photos_to_validate_on_stop_with_a_message_and_a_class_validation_misses_is_warned(caplog):
    one_each = [_own(label, 0) for label in ("with_mask", "without_mask", "mask_weared_incorrect")]
    train, val = split_records(one_each, val_fraction=0.2, seed=0)
    with pytest.raises(DatasetError, match="the validation split is empty: 3 faces in 3 groups"):
        check_split(train, val, "tiny")
    records = [_own("with_mask", i) for i in range(10)] + [_own("without_mask", i) for i in range(10)]
    records.append(_own("mask_weared_incorrect", 0))
    train, val = split_records(records, val_fraction=0.2, seed=0)
    with caplog.at_level(logging.WARNING, logger="train.splits"):
        check_split(train, val, "small")
    assert "no mask_weared_incorrect faces in the validation split (1 to train on)" in caplog.text
    assert "only 1 mask_weared_incorrect faces to train on" in caplog.text


@pytest.mark.workstation
def test_the_command_line_takes_several_datasets_and_a_missing_class_exits_2_with_a_message(tmp_path, capsys):
    pytest.importorskip("keras")
    from train.__main__ import build_parser, main, options_from_args

    first = _class_folders(tmp_path / "a", {"mask": 3, "no_mask": 3})
    second = _class_folders(tmp_path / "b b", {"mask": 2}, first_seed=40)
    flags = [
        "--out",
        str(tmp_path / "run"),
        "--random-init",
        "--no-synth",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    options = options_from_args(
        build_parser().parse_args(["--data", str(first), "--data", str(second), *flags])
    )
    assert options.datasets == (first, second)
    with pytest.raises(SystemExit, match="--val-fraction must be between 0 and 1"):
        options_from_args(build_parser().parse_args(["--val-fraction", "0", *flags]))
    assert main(["--data", str(first), "--data", str(second), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no mask_weared_incorrect faces to train on" in err
    assert "--data ../shared/data" in err
