"""The `--demo` sequence: its frames, its timeline (which alarm when) and its ground truth."""

from __future__ import annotations

import hashlib
from itertools import pairwise

import numpy as np
import pytest

from edge.synth.demo import DEFAULT_FPS, DemoSequence, demo_frames
from edge.synth.scene import entrance_background


@pytest.fixture(scope="module")
def demo() -> DemoSequence:
    return demo_frames()


def digest(frame: np.ndarray) -> str:
    return hashlib.sha256(frame.tobytes()).hexdigest()


def test_timeline_is_ok_then_no_mask_then_worn_wrong_with_empty_corridor_between(demo):
    people = [s for s in demo.segments if s.label is not None]
    assert [s.label for s in people] == ["with_mask", "without_mask", "mask_weared_incorrect"]
    assert [s.alarm for s in people] == [None, "without_mask", "mask_weared_incorrect"]
    assert [alarm for _, alarm in demo.expected_alarms()] == ["without_mask", "mask_weared_incorrect"]
    kinds = ["person" if s.label else "empty" for s in demo.segments]
    assert kinds == ["empty", "person", "empty", "person", "empty", "person", "empty"]
    assert demo.segments[0].start == 0
    for before, after in pairwise(demo.segments):
        assert before.stop == after.start  # contiguous, no frame belongs to two segments
    assert "alarm: without_mask" in demo.describe() and "ok, no alarm" in demo.describe()


def test_length_and_frames_are_640x480_bgr_uint8(demo):
    assert demo.fps == DEFAULT_FPS
    assert len(demo) == demo.segments[-1].stop
    assert 10.0 <= demo.duration_s <= 20.0
    for index in (0, len(demo) // 2, len(demo) - 1, -1):
        frame = demo[index]
        assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8


def test_frames_are_the_same_on_every_build(demo):
    again = demo_frames()
    for index in range(0, len(demo), 17):
        assert digest(demo[index]) == digest(again[index])


def test_empty_segments_show_the_corridor_and_people_change_it(demo):
    background = entrance_background()
    for segment in demo.segments:
        middle = (segment.start + segment.stop) // 2
        if segment.label is None:
            assert np.array_equal(demo[middle], background) and demo.faces(middle) == []
        else:
            assert np.abs(demo[middle].astype(int) - background).mean() > 5
            assert len(demo.faces(middle)) == 1


def test_each_person_walks_towards_the_camera_inside_the_frame(demo):
    for segment in demo.segments:
        if segment.label is None:
            continue
        heights = [demo.faces(i)[0].height for i in range(segment.start, segment.stop)]
        assert all(later > earlier for earlier, later in pairwise(heights))
        assert 40 <= heights[0] <= 64 and heights[-1] >= 150
        for index in (segment.start, segment.stop - 1):
            face = demo.faces(index)[0]
            x1, y1, x2, y2 = face.box
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
            assert face.label == segment.label
            assert all(x1 - 5 <= x <= x2 + 5 and y1 - 5 <= y <= y2 + 5 for x, y in face.keypoints)


def mouth_colour(demo: DemoSequence, index: int) -> np.ndarray:
    x, y = (int(round(v)) for v in demo.faces(index)[0].keypoints[3])
    return demo[index][y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).mean(axis=0)  # B, G, R


def test_the_masks_are_where_the_timeline_says(demo):
    """Late in each walk (a big face): blue mask over the mouth only for the person who wears it right."""
    people = [s for s in demo.segments if s.label is not None]
    blue, red = 0, 2
    masked, bare, on_chin = (mouth_colour(demo, s.stop - 3) for s in people)
    assert masked[blue] > masked[red] + 30
    assert bare[red] > bare[blue] and on_chin[red] > on_chin[blue]


def test_indexing_slicing_and_errors(demo):
    assert np.array_equal(demo[-1], demo[len(demo) - 1])
    assert len(demo[3:9:2]) == 3
    with pytest.raises(IndexError):
        demo[len(demo)]
    assert demo.segment_at(0).label is None
    assert demo.segment_at(demo.segments[1].start).label == "with_mask"


def test_other_frame_rates_keep_the_timeline_in_seconds():
    slow = demo_frames(fps=5)
    assert slow.fps == 5 and abs(slow.duration_s - demo_frames().duration_s) < 1.0
    with pytest.raises(ValueError):
        demo_frames(fps=0)


def test_a_frame_source_can_play_it_without_holding_every_frame(demo):
    camera = pytest.importorskip("edge.camera")
    source = camera.FrameListSource(demo_frames, name="demo")
    source.open()
    played = 0
    while (frame := source.read()) is not None:
        if played in (0, 40, len(demo) - 1):
            assert np.array_equal(frame, demo[played])
        played += 1
    source.close()
    assert played == len(demo)


def test_the_detector_sees_each_person_and_nothing_else(demo):
    """One face per person frame, none in the empty corridor: no phantom visitor for the daemon to flag."""
    faces_module = pytest.importorskip("edge.faces")
    try:
        detector = faces_module.FaceDetector()
    except (FileNotFoundError, ImportError) as missing:  # models not fetched, or no TFLite runtime
        pytest.skip(f"detector not installed: {missing}")
    for index in range(0, len(demo), 3):
        found = detector.detect(demo[index])
        truth = demo.faces(index)
        if not truth:
            assert found == [], f"frame {index}: a face in the empty corridor"
            continue
        assert len(found) <= 1, f"frame {index}: {len(found)} faces for one person"
        if truth[0].height >= 64:
            assert found, f"frame {index}: the {truth[0].height:.0f} px face was not found"
            x1, y1, x2, y2 = found[0].box
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            tx1, ty1, tx2, ty2 = truth[0].box
            assert tx1 <= cx <= tx2 and ty1 <= cy <= ty2
