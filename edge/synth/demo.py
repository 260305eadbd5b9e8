"""The `maskwatch run --demo` sequence: three people walk up to the entrance, with the answer key.

It shows what the daemon is for without a camera or any file of the user's: first a person wearing a
mask correctly (no alarm), then one without a mask (the no-mask alarm), then one with the mask on the chin
(the worn-wrong alarm), with the empty corridor between them. All three are scikit-image's astronaut
(see edge/synth/scene.py) in blue, green and purple jackets, the second mirrored, with masks drawn by
our synthesizer.

`demo_frames()` returns a `DemoSequence`: a read-only sequence of 640x480 BGR uint8 frames, built one at a
time when indexed (the whole clip would take 200 MB; a frame takes a few milliseconds), plus `segments`,
the timeline that says which alarm each stretch of frames should raise, and `faces(i)`, the ground-truth
faces of frame i. It is deterministic: the same frames on every run (other OpenCV versions may round a
few pixels one or two grey levels apart; the ground truth is exact everywhere).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from edge.synth.masks import MaskStyle
from edge.synth.scene import (
    FRAME_HEIGHT,
    FRAME_WIDTH,
    PlacedFace,
    SampleFace,
    approach,
    astronaut,
    entrance_background,
    face_truth,
    place_face,
)

DEFAULT_FPS = 15
BLUE_HUE, GREEN_HUE, PURPLE_HUE = 110, 60, 140  # jacket colours (OpenCV hue) that tell the three people apart
VIOLATION_LABELS = ("without_mask", "mask_weared_incorrect")
# The classic light-blue surgical mask, so the only difference between the first and third person is how
# it is worn.
DEMO_MASK = MaskStyle(
    shape="surgical", color=(150, 200, 230), pleats=3, ear_loops=True, lighting=0.5, blur_px=0.5
)


@dataclass(frozen=True)
class Segment:
    """A stretch of frames [start, stop) and what the daemon should make of it."""

    start: int
    stop: int
    label: str | None  # the true label of the person in view; None while the corridor is empty
    person: str | None = None

    @property
    def alarm(self) -> str | None:
        """The alarm this segment should raise: a violation label, or None (nobody, or a mask worn right)."""
        return self.label if self.label in VIOLATION_LABELS else None

    def __len__(self) -> int:
        return self.stop - self.start

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and self.start <= index < self.stop


@dataclass(frozen=True)
class _Walk:
    sample: SampleFace
    path: list[tuple[float, tuple[float, float]]]  # face height and centre per frame of the segment


class DemoSequence(Sequence[np.ndarray]):
    """The demo clip: frames on demand, with the timeline and ground truth that tests assert against."""

    def __init__(self, fps: int, segments: tuple[Segment, ...], walks: dict[int, _Walk]):
        self.fps = fps
        self.segments = segments
        self.width, self.height = FRAME_WIDTH, FRAME_HEIGHT
        self._walks = walks  # keyed by segment start

    def __len__(self) -> int:
        return self.segments[-1].stop if self.segments else 0

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice) -> list[np.ndarray]: ...

    def __getitem__(self, index: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        frame, _ = self._render(self._index(index))
        return frame

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self)):
            yield self[index]

    @property
    def duration_s(self) -> float:
        return len(self) / self.fps

    def segment_at(self, index: int) -> Segment:
        index = self._index(index)
        return next(segment for segment in self.segments if index in segment)

    def faces(self, index: int) -> list[PlacedFace]:
        """The ground-truth faces in frame `index` (empty list between people)."""
        _, faces = self._render(self._index(index), draw=False)
        return faces

    def expected_alarms(self) -> list[tuple[Segment, str]]:
        """Each violating person's segment with the alarm it should raise, in order."""
        return [(segment, segment.alarm) for segment in self.segments if segment.alarm is not None]

    def describe(self) -> str:
        """The timeline in words, for the demo's log."""
        lines = []
        for segment in self.segments:
            when = f"{segment.start / self.fps:5.1f}-{segment.stop / self.fps:5.1f} s"
            if segment.label is None:
                lines.append(f"{when}  empty corridor")
            else:
                outcome = f"alarm: {segment.alarm}" if segment.alarm else "ok, no alarm"
                lines.append(f"{when}  {segment.person}: {segment.label} -> {outcome}")
        return "\n".join(lines)

    def _index(self, index: int) -> int:
        length = len(self)
        if not -length <= index < length:
            raise IndexError(f"demo frame {index} out of range (0..{length - 1})")
        return index % length

    def _render(self, index: int, draw: bool = True) -> tuple[np.ndarray | None, list[PlacedFace]]:
        segment = self.segment_at(index)
        frame = entrance_background(self.width, self.height) if draw else None
        walk = self._walks.get(segment.start)
        if walk is None:
            return frame, []
        height, centre = walk.path[index - segment.start]
        if frame is None:
            return None, [face_truth(walk.sample, height, centre)]
        return frame, [place_face(frame, walk.sample, height, centre)]


def demo_people() -> list[SampleFace]:
    """The three visitors: mask worn correctly, no mask, mask on the chin."""
    person = astronaut()
    return [
        person.with_jacket(BLUE_HUE).with_mask("correct", seed=1, style=DEMO_MASK),
        person.with_jacket(GREEN_HUE).mirrored(),
        person.with_jacket(PURPLE_HUE).with_mask("on_chin", seed=3, style=DEMO_MASK),
    ]


def demo_frames(
    fps: int = DEFAULT_FPS,
    walk_s: float = 3.5,
    gap_s: float = 1.5,
    start_face_px: float = 48.0,
    end_face_px: float = 200.0,
) -> DemoSequence:
    """The demo clip (about 15.5 s at 15 fps): empty, person, empty, person, empty, person, empty.

    Each person walks from the far end of the corridor (a `start_face_px` face) to just before the
    camera (`end_face_px`), then is gone, as if they had walked through the door.
    """
    if fps < 1:
        raise ValueError(f"fps must be at least 1, got {fps}")
    walk_frames, gap_frames = max(1, round(walk_s * fps)), max(1, round(gap_s * fps))
    lead_frames = max(1, round(fps * 1.0))
    routes = [
        ((230.0, 200.0), (300.0, 250.0)),
        ((420.0, 200.0), (340.0, 250.0)),
        ((300.0, 195.0), (320.0, 250.0)),
    ]
    segments: list[Segment] = []
    walks: dict[int, _Walk] = {}
    cursor = 0

    def add(length: int, sample: SampleFace | None = None, route=None) -> None:
        nonlocal cursor
        if sample is None:
            segments.append(Segment(cursor, cursor + length, None))
        else:
            segments.append(Segment(cursor, cursor + length, sample.label, sample.name))
            walks[cursor] = _Walk(sample, approach(length, start_face_px, end_face_px, *route))
        cursor += length

    add(lead_frames)
    for number, (sample, route) in enumerate(zip(demo_people(), routes, strict=True)):
        if number:
            add(gap_frames)
        add(walk_frames, sample, route)
    add(lead_frames)
    return DemoSequence(fps, tuple(segments), walks)
