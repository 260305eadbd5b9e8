"""The TFLite runtime seam: LiteRT when installed, else the frozen tflite-runtime.

Both expose the same Interpreter; only this module knows which one is present. Quantization arithmetic
lives here too, so scale and zero point are applied the same way by every model we run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.model_metadata import QuantParams

log = logging.getLogger(__name__)


class RuntimeMissingError(ImportError):
    """No TFLite runtime is installed."""


class ModelFileError(ValueError):
    """A model file the runtime cannot load: cut short by a full disk or a power cut, or not a .tflite."""


_REINSTALL = (
    "the file is damaged or not a TFLite model: install it again (on a Pi: sudo ./setup.sh; in a "
    "checkout: `make detector` for models/detector/, `git checkout models/` for the shipped models)"
)


def _new_interpreter(num_threads: int, what: str, **model):
    """The runtime's Interpreter, its refusal of a broken model turned into one that names the file."""
    interpreter_class = _interpreter_class()
    try:
        return interpreter_class(**model, num_threads=int(num_threads))
    except (ValueError, RuntimeError) as exc:  # "not a valid Flatbuffer buffer", "Model provided has ..."
        raise ModelFileError(f"{what}: {exc}; {_REINSTALL}") from exc


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError as exc:
        litert_error = exc
    try:
        from tflite_runtime.interpreter import Interpreter  # frozen at 2.14, needs numpy < 2

        log.info("using tflite_runtime: ai_edge_litert did not import (%s)", litert_error)
        return Interpreter
    except ImportError as exc:
        # installed but failing to load (a numpy it was not built for, a sandbox refusing its library)
        # is another fix than not installed: say which
        raise RuntimeMissingError(
            "no TFLite runtime: install it with `pip install ai-edge-litert` "
            "(or `pip install tflite-runtime 'numpy<2'` on systems LiteRT has no wheel for); "
            f"ai_edge_litert: {litert_error}; tflite_runtime: {exc}"
        ) from None


def make_interpreter(model_content: bytes, num_threads: int = 2, name: str = "model"):
    """An interpreter over model bytes, not yet allocated: for callers that resize inputs first
    (several interpreters can share one bytes object instead of re-reading the file). `name` is the
    file the bytes came from, for the error a broken one raises."""
    return _new_interpreter(num_threads, name, model_content=model_content)


def load_interpreter(model_path: Path, num_threads: int = 2):
    """An allocated interpreter for `model_path`; a missing or broken file is an error that names it."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"model file {model_path} not found")
    interpreter = _new_interpreter(num_threads, str(model_path), model_path=str(model_path))
    interpreter.allocate_tensors()
    return interpreter


def quant_params(detail: dict) -> QuantParams:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return QuantParams(dtype=np.dtype(detail["dtype"]).name, scale=float(scale), zero_point=int(zero_point))


def dequantize(values: np.ndarray, params: QuantParams) -> np.ndarray:
    """Integer tensor to float, through int32 so int8/uint8 arithmetic cannot wrap."""
    if params.dtype == "float32" or params.scale == 0.0:
        return values.astype(np.float32)
    return (values.astype(np.int32) - params.zero_point).astype(np.float32) * np.float32(params.scale)


def quantize(values: np.ndarray, params: QuantParams) -> np.ndarray:
    if params.dtype == "float32" or params.scale == 0.0:
        return values.astype(np.float32)
    info = np.iinfo(np.dtype(params.dtype))
    q = np.round(values / params.scale) + params.zero_point
    return np.clip(q, info.min, info.max).astype(params.dtype)
