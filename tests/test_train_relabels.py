"""faces2 images whose published label contradicts the product's classes are relabelled, and say so."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from edge.model_metadata import LABELS
from train.data import FACES2_RELABELS, faces2_records, read_relabels


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def faces2_root(tmp_path: Path) -> Path:
    (tmp_path / "faces2").mkdir()
    write_csv(
        tmp_path / "faces2" / "groups.csv",
        ["path", "label", "group", "identity", "links", "source_file"],
        [
            ["faces2/with_mask/low.jpg", "with_mask", "g1", "", "", ""],
            ["faces2/with_mask/ok.jpg", "with_mask", "g2", "", "", ""],
            ["faces2/without_mask/bare.jpg", "without_mask", "g3", "", "", ""],
        ],
    )
    return tmp_path


def test_a_relabelled_mask_below_the_nose_is_worn_wrongly_and_keeps_its_published_label(faces2_root):
    sizes = {
        p: (100, 120)
        for p in ("faces2/with_mask/low.jpg", "faces2/with_mask/ok.jpg", "faces2/without_mask/bare.jpg")
    }
    records = faces2_records(faces2_root, sizes, {"faces2/with_mask/low.jpg": "mask_weared_incorrect"})
    by_key = {r.key: r for r in records}
    assert by_key["faces2/with_mask/low.jpg"].label == "mask_weared_incorrect"
    assert by_key["faces2/with_mask/low.jpg"].extra == {"published_label": "with_mask"}
    assert by_key["faces2/with_mask/ok.jpg"].label == "with_mask"
    assert by_key["faces2/with_mask/ok.jpg"].extra == {}
    assert by_key["faces2/without_mask/bare.jpg"].label == "without_mask"


def test_a_relabel_to_an_unknown_label_is_an_error_naming_the_file(tmp_path):
    path = write_csv(
        tmp_path / "relabels.csv", ["path", "label", "reason"], [["faces2/x.jpg", "mask_low", "?"]]
    )
    with pytest.raises(ValueError, match=r"faces2/x\.jpg.*mask_low"):
        read_relabels(path)


def test_the_shipped_relabels_name_distinct_faces2_masked_images_with_a_reason():
    relabels = read_relabels(FACES2_RELABELS)
    with open(FACES2_RELABELS, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(relabels) == len(rows) > 0  # no path listed twice
    for row in rows:
        assert row["path"].startswith("faces2/with_mask/"), row
        assert row["label"] in LABELS and row["label"] != "with_mask", row
        assert row["reason"].strip(), row


@pytest.mark.workstation
@pytest.mark.parametrize(("flags", "relabels"), [([], None), (["--published-labels"], {})])
def test_published_labels_flag_decides_whether_a_run_reads_the_relabels(
    monkeypatch, tmp_path, flags, relabels
):
    from train import run
    from train.__main__ import build_parser, options_from_args

    asked = []
    monkeypatch.setattr(run, "real_records", lambda root, relabels=None: asked.append(relabels) or [])
    args = build_parser().parse_args(["--out", str(tmp_path), "--random-init", "--no-synth", *flags])
    run.build_records(options_from_args(args))
    assert asked == [relabels]  # None: train/faces2_relabels.csv; {}: faces2's labels as published
