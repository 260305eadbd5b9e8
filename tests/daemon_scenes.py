"""Entrance scenes with known answers for the daemon's tests: people walking towards the camera.

Real BlazeFace finds the demo's person (scikit-image's astronaut) in these frames, and the colour test
classifier (tests/data/color_classifier.tflite, a real TFLite model) labels a face by its dominant colour
channel. Swapping channels of the whole frame therefore chooses the label without touching the face's
shape: as drawn, skin is red-dominant (with_mask); red and green swapped it reads without_mask; red and
blue swapped, mask_weared_incorrect. So the loop, the app and the alarm are tested through real
detection and real TFLite inference with answers known in advance, before and without the trained model.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.synth.scene import approach, astronaut, entrance_background, place_face

REPO = Path(__file__).resolve().parent.parent
COLOR_MODEL = REPO / "tests" / "data" / "color_classifier.tflite"
SHIPPED_MODEL = REPO / "models" / "mask_classifier.tflite"
FPS = 15.0

CHANNELS = {  # BGR channel order that makes the colour model answer each label
    "with_mask": [0, 1, 2],
    "without_mask": [0, 2, 1],
    "mask_weared_incorrect": [2, 1, 0],
}


def approaching(
    label: str, frames: int = 30, start_px: float = 60.0, end_px: float = 160.0
) -> list[np.ndarray]:
    """A person walking towards the camera, colour-coded so the colour model says `label`."""
    person = astronaut()
    path = approach(frames, start_px, end_px, (300.0, 220.0), (320.0, 240.0))
    out = []
    for height, centre in path:
        frame = entrance_background()
        place_face(frame, person, height, centre)
        out.append(np.ascontiguousarray(frame[:, :, CHANNELS[label]]))
    return out


def empty(frames: int) -> list[np.ndarray]:
    background = entrance_background()
    return [background.copy() for _ in range(frames)]


def write_folder(frames: list[np.ndarray], folder: Path) -> Path:
    """Frames as lossless PNGs named in order: an image-folder source."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.png"), frame)
    return folder


class StepClock:
    """The loop's clock at a fixed frame rate: each call is one frame later."""

    def __init__(self, fps: float = FPS, start: float = 1000.0):
        self.step, self.now = 1.0 / fps, start - 1.0 / fps

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Recorder:
    """An observer that keeps everything it is given; `on_frame`, if given, is also called with each frame."""

    def __init__(self, on_frame=None):
        self.frames, self.events, self.camera = [], [], []
        self._on_frame = on_frame

    def on_frame(self, result):
        self.frames.append(result)
        if self._on_frame:
            self._on_frame(result)

    def on_event(self, event):
        self.events.append(event)

    def on_camera(self, connected):
        self.camera.append(connected)

    def close(self):
        pass
