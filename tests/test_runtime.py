"""The TFLite runtime seam: LiteRT when installed, else tflite-runtime, else an error saying what to install."""

from __future__ import annotations

import os
import sys
import types

import pytest

from edge import runtime


class FrozenInterpreter:
    """Stands in for tflite_runtime's Interpreter (the Pi's fallback when LiteRT has no wheel)."""


def _fake_tflite_runtime(monkeypatch) -> None:
    package = types.ModuleType("tflite_runtime")
    module = types.ModuleType("tflite_runtime.interpreter")
    module.Interpreter = FrozenInterpreter
    package.interpreter = module
    monkeypatch.setitem(sys.modules, "tflite_runtime", package)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", module)


def test_this_test_stack_runs_the_runtime_it_was_built_with():
    """`make test-pi-stack` builds one venv with LiteRT and one with only tflite-runtime 2.14 and says which
    in MASKWATCH_TEST_RUNTIME; without it this is the workstation's venv, which has LiteRT. Guards against a
    fallback run that silently used LiteRT after all."""
    expected = os.environ.get("MASKWATCH_TEST_RUNTIME", "ai_edge_litert")
    assert runtime._interpreter_class().__module__.split(".")[0] == expected


def test_litert_comes_first_when_both_are_installed(monkeypatch):
    Interpreter = pytest.importorskip("ai_edge_litert.interpreter").Interpreter  # noqa: N806

    _fake_tflite_runtime(monkeypatch)
    assert runtime._interpreter_class() is Interpreter


def test_without_litert_the_frozen_tflite_runtime_is_used_and_the_log_says_why(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # `import` raises ImportError
    _fake_tflite_runtime(monkeypatch)
    with caplog.at_level("INFO"):
        assert runtime._interpreter_class() is FrozenInterpreter
    assert (
        "using tflite_runtime: ai_edge_litert did not import (import of ai_edge_litert.interpreter"
        in caplog.text
    )


def test_without_either_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(runtime.RuntimeMissingError, match=r"pip install ai-edge-litert") as caught:
        runtime._interpreter_class()
    assert isinstance(caught.value, ImportError)
    # each runtime's own reason, for the case where it is installed but does not load
    assert "ai_edge_litert: import of ai_edge_litert.interpreter halted" in str(caught.value)
    assert "tflite_runtime: import of tflite_runtime.interpreter halted" in str(caught.value)


needs_litert = pytest.mark.skipif(
    os.environ.get("MASKWATCH_TEST_RUNTIME", "ai_edge_litert") != "ai_edge_litert",
    reason="tflite-runtime 2.14 crashes the process on a cut-short model (the shipped models' hashes are "
    "checked before it reads them: test_faces, test_classifier)",
)


@pytest.fixture
def cut_short_detector(tmp_path):
    """The short-range detector as a power cut during an install leaves it: its first 20 kB."""
    from edge.paths import REPO_ROOT

    path = tmp_path / "face detection.tflite"
    path.write_bytes((REPO_ROOT / "models/detector/face_detection_short_range.tflite").read_bytes()[:20_000])
    return path


@needs_litert
@pytest.mark.parametrize(
    "load",
    [
        lambda path: runtime.load_interpreter(path, 1),
        lambda path: runtime.make_interpreter(path.read_bytes(), 1, name=str(path)),
    ],
    ids=["from the file", "from its bytes"],
)
def test_a_model_file_cut_short_is_an_error_naming_it_and_how_to_install_it_again(cut_short_detector, load):
    with pytest.raises(runtime.ModelFileError) as caught:
        load(cut_short_detector)
    message = str(caught.value)
    assert str(cut_short_detector) in message and "install it again" in message
    assert isinstance(caught.value, ValueError)  # callers that catch ValueError still catch it


@needs_litert
def test_the_classifier_names_a_damaged_model_file(tmp_path):
    from edge.classifier import BatchInvoker
    from edge.paths import REPO_ROOT

    damaged = tmp_path / "mask_classifier.tflite"
    damaged.write_bytes(b"TFL3" + (REPO_ROOT / "models/mask_classifier.tflite").read_bytes()[4:5000])
    with pytest.raises(runtime.ModelFileError, match="mask_classifier.tflite"):
        BatchInvoker(damaged, threads=1)
