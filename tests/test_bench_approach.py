"""bench/approach_clips.py: growing clips are built as they claim, and scored as they claim.

No shared data needed: the walker is scikit-image's astronaut, with the face box BlazeFace gives her
(edge.synth.scene.ASTRONAUT_BOX, the convention of bench/closeup_faces.csv), in the demo's corridor.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from bench import approach_clips as ac
from edge.faces import Face, FaceDetector
from edge.synth.scene import ASTRONAUT_BOX, entrance_background

FRAMES = 8


@pytest.fixture(scope="module")
def astronaut() -> ac.SampleFace:
    return ac.crop_sample(
        "astronaut", np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1]), ASTRONAUT_BOX
    )


def walker(sample, frames=FRAMES, first=0, start_px=40.0, end_px=300.0, start=(300, 190), end=(330, 240)):
    return ac.Walker(sample, "without_mask", first, ac.walk(frames - first, start_px, end_px, start, end))


def clip_of(*walkers, frames=FRAMES) -> ac.Clip:
    return ac.Clip("clip_test", entrance_background(), tuple(walkers), frames)


class Stub:
    """A photo-mode detector that reports each frame's truth boxes, moved by `shift` on chosen frames."""

    stream = False

    def __init__(self, clip: ac.Clip, shifted: dict[int, float] | None = None):
        self.clip, self.shifted, self.index = clip, shifted or {}, 0

    def detect(self, image, frame_order="BGR"):
        boxes = [b for b in ac.render(self.clip, self.index).boxes if b is not None]
        dx = self.shifted.get(self.index, 0.0)
        self.index += 1
        return [Face((x1 + dx * (x2 - x1), y1, x2 + dx * (x2 - x1), y2), 0.9, ()) for x1, y1, x2, y2 in boxes]


def test_a_walker_face_grows_from_its_start_to_its_end_height_inside_the_frame(astronaut):
    clip = clip_of(walker(astronaut, frames=12, start_px=30, end_px=400, end=(320, 240)))
    heights = [ac.render(clip, i).boxes[0][3] - ac.render(clip, i).boxes[0][1] for i in range(12)]
    assert heights[0] == pytest.approx(30, abs=0.5) and heights[-1] == pytest.approx(400, abs=0.5)
    assert all(b > a for a, b in zip(heights, heights[1:], strict=False))  # a steady walk: ever larger
    assert heights[6] < 100  # slow growth far away, fast near the camera (1 / distance)
    x1, y1, x2, y2 = ac.render(clip, 11).boxes[0]
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480


def test_the_face_box_moves_with_the_pasted_pixels(astronaut):
    frame = ac.render(clip_of(walker(astronaut)), 4)
    x1, y1, x2, y2 = (int(v) for v in frame.boxes[0])
    background = entrance_background()
    assert np.abs(frame.image[y1:y2, x1:x2].astype(int) - background[y1:y2, x1:x2]).mean() > 20
    outside = frame.image[:, :40]  # the crop is pasted around the face, far from the left edge
    assert np.array_equal(outside, background[:, :40])


def test_the_truth_is_the_crops_face_box_moved_with_the_crop(astronaut):
    x1, y1, x2, y2 = ASTRONAUT_BOX
    centre = ((x1 + x2) / 2 + 100, (y1 + y2) / 2 + 50)  # at her own size, moved 100 px right, 50 down
    frame = ac.render(clip_of(ac.Walker(astronaut, "without_mask", 0, ((y2 - y1, centre),)), frames=1), 0)
    assert frame.boxes[0] == pytest.approx((x1 + 100, y1 + 50, x2 + 100, y2 + 50))
    assert np.array_equal(frame.image[50:480, 100:612], astronaut.image[:430])  # the same pixels there


def test_a_face_box_reaching_past_its_crop_or_the_frame_is_cut_at_their_edges(astronaut):
    x1, y1, x2, y2 = ASTRONAUT_BOX
    cut = ac.crop_sample("cut", astronaut.image[:, :250], ASTRONAUT_BOX)  # the crop ends inside her face
    twice = 2 * (y2 - y1)  # at twice her size, her face centred 20 px from the frame's top
    frame = ac.render(clip_of(ac.Walker(cut, "without_mask", 0, ((twice, (320, 20)),)), frames=1), 0)
    left = 320 - (x1 + x2)  # the face centre at 320: her face box starts its half width (x 2) left of it
    assert frame.boxes[0] == pytest.approx((left + 2 * x1, 0, left + 2 * 250, 20 + (y2 - y1)))


def test_a_detection_on_the_face_is_found_and_one_shifted_off_it_is_a_miss_and_a_false_positive(astronaut):
    frame = ac.render(clip_of(walker(astronaut)), 3)
    x1, y1, x2, y2 = frame.boxes[0]
    assert ac.score_frame(frame, np.array([[x1, y1, x2, y2]])) == ([True], 0)
    shift = 0.4 * (x2 - x1)  # IoU 0.43: under the 0.5 the bench scores at
    assert ac.score_frame(frame, np.array([[x1 + shift, y1, x2 + shift, y2]])) == ([False], 1)
    assert ac.score_frame(frame, np.zeros((0, 4))) == ([False], 0)


def test_a_face_behind_a_nearer_person_is_neither_found_nor_missed(astronaut):
    near = walker(astronaut, start_px=200, end_px=260, start=(320, 240), end=(320, 240))
    far = walker(astronaut, first=2, start_px=60, end_px=70, start=(330, 250), end=(330, 250))
    frame = ac.render(clip_of(near, far), 4)
    assert frame.boxes[1] is None and len(frame.hidden) == 1
    found, false_pos = ac.score_frame(frame, np.array([frame.boxes[0], frame.hidden[0]]))
    assert found == [True, None] and false_pos == 0  # a detection on the hidden face is no false positive
    assert ac.render(clip_of(near, far), 1).boxes[1] is None  # not in view yet


def test_runs_of_misses_and_the_first_detection_are_counted_per_person(astronaut):
    clip = clip_of(walker(astronaut))
    results, _ = ac.evaluate([clip], {"photo": Stub(clip, shifted={0: 0.5, 4: 0.5, 5: 0.5, 7: 0.5})})
    (person,) = results["photo"].people
    assert person.found == [False, True, True, True, False, False, True, False]
    assert person.first_found() == 1 and person.miss_runs() == [(4, 2), (7, 1)]
    longest = ac.longest_runs([person])
    assert longest[ac.band(person.heights[4])] == (2, 1)
    assert results["photo"].false_pos == 4 and results["photo"].frames == FRAMES


def test_the_bands_split_where_the_report_says():
    assert [ac.band(h) for h in (30, 63.9, 64, 127.9, 128, 255.9, 256, 400)] == [
        "30-63",
        "30-63",
        "64-127",
        "64-127",
        "128-255",
        "128-255",
        "256+",
        "256+",
    ]


class ShiftedStream(FaceDetector):
    """The real stream detector, its boxes moved half a width to the right on chosen frames."""

    def __init__(self, config, shifted: set[int]):
        super().__init__(config.detector, stream=True, roi=config.decision.roi)
        self.shifted, self.index = shifted, 0

    def reset(self):
        super().reset()
        self.index = 0

    def detect(self, frame, frame_order="BGR"):
        faces = super().detect(frame, frame_order)
        if self.index in self.shifted:
            faces = [
                Face((f.box[0] + f.width / 2, f.box[1], f.box[2] + f.width / 2, f.box[3]), f.score, ())
                for f in faces
            ]
        self.index += 1
        return faces


def test_the_stream_detector_finds_a_clean_walker_on_every_frame_first_in_full_then_in_windows(astronaut):
    clip = clip_of(walker(astronaut))
    stream = FaceDetector.from_config(ac.detector_config(), stream=True)
    plans = []
    for frame in ac.clip_frames(clip):
        plans.append(ac.stream_plan(stream)[0])
        stream.detect(frame.image)
    assert plans[:6] == ["whole", "windows", "windows", "whole", "windows", "windows"]  # she is followed
    results, misses = ac.evaluate([clip], {"stream": stream, "photo": Stub(clip)})  # evaluate resets it
    (person,) = results["stream"].people
    assert person.found == [True] * FRAMES and not misses


def test_the_stream_misses_listed_are_the_frames_it_missed_where_the_photo_search_found_the_face(astronaut):
    clip = clip_of(walker(astronaut))
    stream = ShiftedStream(ac.detector_config(), shifted={2, 4})
    results, misses = ac.evaluate([clip], {"stream": stream, "photo": Stub(clip, shifted={4: 0.5})})
    assert [p.found for p in results["stream"].people] == [[True, True, False, True, False, True, True, True]]
    assert [(m.frame, m.kind, m.followed) for m in misses] == [(2, "windows", True)]
