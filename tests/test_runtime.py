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
