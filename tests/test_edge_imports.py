"""edge/ is what the Pi runs: no TensorFlow or Keras there, and picamera2 only when the camera opens.

The workstation venv has TensorFlow, so an import of it under edge/ would pass every other test here; a
fresh interpreter that imports every edge module and builds the command's parser shows it at once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("tensorflow", "keras", "tf_keras", "train", "convert", "picamera2")

SCRIPT = f"""
import importlib, pkgutil, sys
import edge
from edge.cli import build_parser
build_parser()
names = [m.name for m in pkgutil.walk_packages(edge.__path__, "edge.") if m.name != "edge.__main__"]
for name in names:
    importlib.import_module(name)
print(len(names))
print(sorted({{m.split(".")[0] for m in sys.modules}} & set({FORBIDDEN!r})))
"""


def test_no_edge_module_imports_tensorflow_keras_workstation_code_or_picamera2():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    count, imported = done.stdout.strip().splitlines()[-2:]
    assert int(count) > 30, "edge's modules were not found"
    assert imported == "[]", f"imported under edge/: {imported}"
