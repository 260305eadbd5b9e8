"""Fixture frames for tests: a real face, masked on demand, in 640x480 entrance frames. Made at test time.

Nothing here is stored in the repository: every image is built by code from scikit-image's bundled
`astronaut.png` (a frontal face whose box and keypoints were measured once, see edge/synth/scene.py), with
masks drawn by our synthesizer. All of it is deterministic and BGR uint8, like camera frames.

Typical use in an end-to-end test:

    from tests.fixtures import person_passes, write_frames

    clip = person_passes(placement=None)          # nobody, a person without a mask walking up, nobody
    write_frames(clip.frames, tmp_path)            # for an image-folder source, if the test needs files
    assert clip.faces[clip.first_face].label == "without_mask"

`placement` is None (no mask), "correct", or one of edge.synth.masks.PLACEMENTS_INCORRECT ("below_nose",
"mouth_only", "chin_out", "on_chin"); `label_for(placement)` gives the class the classifier should say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from edge.synth.demo import BLUE_HUE, DEMO_MASK, GREEN_HUE
from edge.synth.masks import MaskStyle, label_for
from edge.synth.scene import (
    FRAME_HEIGHT,
    FRAME_WIDTH,
    PlacedFace,
    SampleFace,
    approach,
    astronaut,
    entrance_background,
    place_face,
)

__all__ = [
    "FRAME_HEIGHT",
    "FRAME_WIDTH",
    "Clip",
    "PlacedFace",
    "SampleFace",
    "astronaut_face",
    "empty_frames",
    "entrance_frame",
    "label_for",
    "masked",
    "person_passes",
    "walking_towards_camera",
    "write_frames",
]


def astronaut_face() -> SampleFace:
    """The astronaut photo (512x812 BGR, body extended downwards, badges painted over), unmasked, with
    `box` and `keypoints`; `masked(None)` is the same person as she appears in fixture frames."""
    return astronaut()


@lru_cache(maxsize=32)
def masked(
    placement: str | None, seed: int = 0, style: MaskStyle | None = DEMO_MASK, mirrored: bool = False
) -> SampleFace:
    """The astronaut wearing a mask as `placement` (None: no mask); a light-blue surgical mask by default.

    Pass `style=None` for a random style drawn from `seed`. `mirrored=True` gives a second-looking person
    (the photo flipped, in a green jacket instead of a blue one), e.g. for two people in one frame. As in
    the demo, her orange space suit is recoloured: BlazeFace now and then takes orange folds for a face.
    Cached: treat the arrays as read-only.
    """
    face = (
        astronaut_face().with_jacket(GREEN_HUE).mirrored()
        if mirrored
        else astronaut_face().with_jacket(BLUE_HUE)
    )
    return face if placement is None else face.with_mask(placement, seed=seed, style=style)


def entrance_frame(
    placement: str | None = None,
    face_px: float = 120.0,
    centre: tuple[float, float] = (320.0, 220.0),
    mirrored: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, PlacedFace]:
    """One 640x480 BGR frame: the corridor with the astronaut's face `face_px` tall (box height) at `centre`."""
    frame = entrance_background()
    return frame, place_face(frame, masked(placement, seed, mirrored=mirrored), face_px, centre)


def empty_frames(n: int) -> list[np.ndarray]:
    """`n` frames of the empty corridor (separate arrays)."""
    return [entrance_background() for _ in range(n)]


@dataclass(frozen=True)
class Clip:
    """Frames and, per frame, the ground-truth faces in it (an empty tuple when nobody is in view)."""

    frames: list[np.ndarray]
    faces: list[tuple[PlacedFace, ...]]

    @property
    def first_face(self) -> int:
        """Index of the first frame with a face in it."""
        return next(i for i, faces in enumerate(self.faces) if faces)

    def __len__(self) -> int:
        return len(self.frames)


def walking_towards_camera(
    placement: str | None = None,
    n_frames: int = 30,
    start_px: float = 48.0,
    end_px: float = 200.0,
    start_centre: tuple[float, float] = (300.0, 200.0),
    end_centre: tuple[float, float] = (320.0, 250.0),
    mirrored: bool = False,
    seed: int = 0,
) -> Clip:
    """A person walking up to the camera: the face grows from `start_px` to `end_px` over `n_frames`."""
    sample = masked(placement, seed, mirrored=mirrored)
    frames, faces = [], []
    for height, centre in approach(n_frames, start_px, end_px, start_centre, end_centre):
        frame = entrance_background()
        faces.append((place_face(frame, sample, height, centre),))
        frames.append(frame)
    return Clip(frames, faces)


def person_passes(
    placement: str | None = None, lead: int = 5, walk: int = 30, tail: int = 5, **walk_options
) -> Clip:
    """Empty corridor, one person walking up (see `walking_towards_camera`), empty corridor again."""
    person = walking_towards_camera(placement, walk, **walk_options)
    return Clip(
        empty_frames(lead) + person.frames + empty_frames(tail),
        [()] * lead + person.faces + [()] * tail,
    )


def write_frames(frames: Sequence[np.ndarray], folder: Path, suffix: str = ".png") -> list[Path]:
    """Write frames as 0000.png, 0001.png, ... (sorted order = frame order) for image-folder sources."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, frame in enumerate(frames):
        path = folder / f"{index:04d}{suffix}"
        if not cv2.imwrite(str(path), frame):
            raise OSError(f"could not write {path}")
        paths.append(path)
    return paths
