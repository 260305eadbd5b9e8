"""The classifier's metadata: the JSON sidecar that travels with the .tflite file.

The model file alone does not say which label index means what, how crops were made, or how scores are
quantized; a sidecar that disagrees with the file it sits beside gives wrong answers without an error.
So the sidecar names the file's SHA-256 and `validate_against` checks it against the loaded interpreter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge.preprocess import PreprocessSpec

LABELS = ("with_mask", "without_mask", "mask_weared_incorrect")
FORMAT_VERSION = 1


def sidecar_json(metadata) -> str:
    """A metadata dataclass with a `preprocess` spec as the sidecar's JSON text (stable key order)."""
    data = asdict(metadata)
    data["preprocess"] = metadata.preprocess.to_dict()
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


class ModelMetadataError(ValueError):
    """The model and its metadata disagree, or the metadata is missing or malformed."""


@dataclass(frozen=True)
class QuantParams:
    dtype: str  # "uint8", "int8" or "float32"
    scale: float
    zero_point: int


@dataclass
class ModelMetadata:
    labels: list[str]
    preprocess: PreprocessSpec
    input: QuantParams
    output: QuantParams
    model_version: str = "0"
    model_sha256: str = ""
    training: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return sidecar_json(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "metadata") -> ModelMetadata:
        try:
            if data.get("format_version") != FORMAT_VERSION:
                raise ModelMetadataError(
                    f"{source}: format_version {data.get('format_version')!r} is not {FORMAT_VERSION}"
                )
            return cls(
                labels=list(data["labels"]),
                preprocess=PreprocessSpec.from_dict(data["preprocess"]),
                input=QuantParams(**data["input"]),
                output=QuantParams(**data["output"]),
                model_version=str(data.get("model_version", "0")),
                model_sha256=str(data.get("model_sha256", "")),
                training=dict(data.get("training", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelMetadataError(f"{source}: malformed model metadata ({exc})") from exc


def sidecar_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_json(path: Path, fix: str = "") -> dict:
    """The JSON in `path`. A file edited by hand or cut short is a ModelMetadataError naming the file
    and, when given, how to fix it, never a traceback from deep inside the loader."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ModelMetadataError(f"{path}: not valid JSON ({exc}){'; ' + fix if fix else ''}") from exc


def load_metadata(model_path: Path) -> ModelMetadata:
    """Read the sidecar next to `model_path` and check it names this exact model file."""
    model_path = Path(model_path)
    path = sidecar_path(model_path)
    if not path.is_file():
        raise ModelMetadataError(f"model metadata {path} is missing: it must sit beside {model_path.name}")
    meta = ModelMetadata.from_dict(read_json(path), source=str(path))
    if not meta.model_sha256:  # shapes and scales are checked at load, label order only by this
        raise ModelMetadataError(
            f"{path} names no model_sha256, so nothing ties its labels to {model_path.name}; "
            "re-run `python -m convert`, which writes it"
        )
    if meta.model_sha256 != file_sha256(model_path):
        raise ModelMetadataError(
            f"{path} describes another model file (sha256 differs from {model_path.name}); "
            "re-run `python -m convert` or restore the matching pair"
        )
    return meta


def save_metadata(meta, model_path: Path) -> Path:
    """Write `meta` (the classifier's or the face verifier's metadata) beside `model_path`, naming its sha256."""
    meta.model_sha256 = file_sha256(model_path)
    path = sidecar_path(model_path)
    path.write_text(meta.to_json())
    return path


def validate_against(meta: ModelMetadata, input_detail: dict, output_detail: dict) -> None:
    """Raise ModelMetadataError unless the interpreter's tensors match what the metadata promises."""
    size = meta.preprocess.input_size
    in_shape = tuple(int(v) for v in input_detail["shape"])
    if in_shape[1:] != (size, size, 3):
        raise ModelMetadataError(f"model input is {in_shape}, metadata says (N, {size}, {size}, 3)")
    out_shape = tuple(int(v) for v in output_detail["shape"])
    if out_shape[-1] != len(meta.labels):
        raise ModelMetadataError(
            f"model has {out_shape[-1]} outputs, metadata lists {len(meta.labels)} labels"
        )
    for name, detail, expected in (
        ("input", input_detail, meta.input),
        ("output", output_detail, meta.output),
    ):
        dtype = detail["dtype"].__name__ if hasattr(detail["dtype"], "__name__") else str(detail["dtype"])
        if dtype != expected.dtype:
            raise ModelMetadataError(f"model {name} dtype is {dtype}, metadata says {expected.dtype}")
        scale, zero_point = detail.get("quantization", (0.0, 0))
        if expected.dtype != "float32" and (
            abs(scale - expected.scale) > 1e-6 * max(1.0, abs(expected.scale))
            or zero_point != expected.zero_point
        ):
            raise ModelMetadataError(
                f"model {name} quantization is scale={scale}, zero_point={zero_point}; "
                f"metadata says scale={expected.scale}, zero_point={expected.zero_point}"
            )
