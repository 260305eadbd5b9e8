"""Fetching the demo photo out of a scikit-image wheel, and finding it when scikit-image is absent."""

from __future__ import annotations

import importlib.util
import zipfile

import pytest

from edge import fetch_demo_image
from edge.fetch_demo_image import FILE_NAME, MEMBER, FetchError, extract_image, fetch
from edge.synth import scene


@pytest.fixture
def photo_bytes() -> bytes:
    path = scene.sample_image_path()  # the installed scikit-image's copy (dev requirements)
    return path.read_bytes()


def fake_wheel(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_extracts_the_photo_and_then_does_nothing(tmp_path, photo_bytes):
    wheel = fake_wheel(
        tmp_path / "scikit_image-0.24.0-cp311-none-any.whl", {MEMBER: photo_bytes, "skimage/x.py": b""}
    )
    target = tmp_path / "models" / "demo"
    installed = fetch(target, wheel)
    assert installed == target / FILE_NAME and installed.read_bytes() == photo_bytes
    assert [p.name for p in target.iterdir()] == [FILE_NAME]  # no partial file left behind
    assert fetch(target, tmp_path / "no-such.whl") == installed  # already there: the wheel is not even opened


def test_a_changed_photo_or_a_wrong_wheel_is_refused(tmp_path, photo_bytes):
    changed = fake_wheel(tmp_path / "changed.whl", {MEMBER: photo_bytes[:-1] + b"\0"})
    with pytest.raises(FetchError, match="sha256"):
        extract_image(changed, tmp_path / "out")
    assert not (tmp_path / "out" / FILE_NAME).exists()
    other = fake_wheel(tmp_path / "other.whl", {"numpy/__init__.py": b""})
    with pytest.raises(FetchError, match="no skimage/data/astronaut.png"):
        extract_image(other, tmp_path / "out")
    (tmp_path / "broken.whl").write_bytes(b"not a zip")
    with pytest.raises(FetchError, match="not a readable wheel"):
        extract_image(tmp_path / "broken.whl", tmp_path / "out")


def test_without_scikit_image_the_demo_uses_the_fetched_copy(tmp_path, monkeypatch, photo_bytes):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "skimage" else real_find_spec(name, *a)
    )
    monkeypatch.setenv("MASKWATCH_MODELS_DIR", str(tmp_path))
    with pytest.raises(scene.SampleImageMissingError, match="python -m edge.fetch_demo_image"):
        scene.sample_image_path()
    fetch(wheel=fake_wheel(tmp_path / "sk.whl", {MEMBER: photo_bytes}))
    assert scene.sample_image_path() == tmp_path / "demo" / FILE_NAME
    assert fetch_demo_image.demo_image_dir() == tmp_path / "demo"
