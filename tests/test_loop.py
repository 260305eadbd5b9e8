"""The per-frame loop with real detection and TFLite inference, mock GPIO pins, and scripted faults."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from daemon_scenes import COLOR_MODEL, Recorder, StepClock, approaching, empty

from edge.alarm import Alarm
from edge.camera import CameraError, FrameListSource, MotionGate, RetryingSource
from edge.classifier import MaskClassifier, Prediction
from edge.config import AlarmConfig, DecisionConfig
from edge.decision import Decider
from edge.faces import Face, FaceDetector
from edge.loop import process_frame, run_loop

RED, BUZZER = 17, 18


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def color_classifier():
    return MaskClassifier(COLOR_MODEL, threads=1)


def replay(frames, detector, classifier, alarm, recorder, clock=None):
    """The real loop over `frames` with the default decision settings, one clock step per frame."""
    return run_loop(
        FrameListSource(frames),
        detector,
        classifier,
        Decider(),
        alarm,
        observers=[recorder],
        clock=clock or StepClock(),
    )


def test_a_violator_walking_in_alarms_once_within_half_a_second(pins, detector, color_classifier):
    frames = empty(5) + approaching("without_mask", 30) + empty(5)
    recorder = Recorder()
    with Alarm(AlarmConfig(led_pin=RED, buzzer_pin=BUZZER, duration_s=0.4), pin_factory=pins) as alarm:
        summary = replay(frames, detector, color_classifier, alarm, recorder)
        alarm.wait_until_quiet()
    assert summary.frames == 40 and summary.ended == "source ended"
    assert [e.label for e in summary.events] == ["without_mask"]
    first_seen = next(r.timestamp for r in recorder.frames if r.faces)
    assert summary.events[0].timestamp - first_seen <= 0.5
    for pin in (RED, BUZZER):  # off until the alarm, then on/off twice: one pattern, never restarted
        pins.pin(pin).assert_states([False, True, False, True, False])
        assert len(pins.pin(pin).states) == 5
    deciding = next(r for r in recorder.frames if r.timestamp == summary.events[0].timestamp)
    assert recorder.events[0].frame is deciding.frame  # the frame that decided it, by reference


def test_a_worn_wrong_mask_gets_its_own_alarm_and_a_masked_person_none(pins, detector, color_classifier):
    frames = approaching("with_mask", 20) + empty(40) + approaching("mask_weared_incorrect", 20)
    with Alarm(
        AlarmConfig(led_pin=RED, buzzer_pin=BUZZER, ok_led_pin=27, duration_s=0.8), pin_factory=pins
    ) as alarm:
        recorder = Recorder()
        summary = replay(frames, detector, color_classifier, alarm, recorder)
    assert [e.label for e in summary.events] == ["mask_weared_incorrect"]
    decisions = [f.decision for r in recorder.frames[:20] for f in r.faces]
    assert "violation" not in decisions and decisions.count("ok") >= 15
    assert any(s.state for s in pins.pin(27).states), "the green LED showed the masked person was ok"


def test_an_unmasked_face_on_a_poster_stops_alarming_once_it_has_not_moved_for_still_face_s(
    pins, detector, color_classifier
):
    poster = approaching("without_mask", 30)[-1]
    noise = np.random.default_rng(0)
    frames = [  # the same picture through a noisy sensor: the detector's box jitters
        np.clip(poster + noise.normal(0, 3, poster.shape), 0, 255).astype(np.uint8) for _ in range(90)
    ]
    recorder = Recorder()
    decider = Decider(DecisionConfig(cooldown_s=1.0, still_face_s=3.0))
    with Alarm(AlarmConfig(led_pin=RED, buzzer_pin=BUZZER, duration_s=0.2), pin_factory=pins) as alarm:
        summary = run_loop(
            FrameListSource(frames),
            detector,
            color_classifier,
            decider,
            alarm,
            observers=[recorder],
            clock=StepClock(),
        )
    start = recorder.frames[0].timestamp
    assert [round(e.timestamp - start) for e in summary.events] == [
        0,
        1,
        2,
    ]  # then a picture: no alarm at 3-5 s
    late = [f for r in recorder.frames if r.timestamp - start > 3.1 for f in r.faces]
    assert len(late) >= 25 and all(f.decision == "ignored" for f in late)
    assert {f.track_id for r in recorder.frames for f in r.faces} == {1}, "one face all along"


def test_frame_results_carry_faces_stage_times_and_the_clocks_fps(detector, color_classifier):
    recorder = Recorder()
    frames = approaching("with_mask", 6)
    replay(frames, detector, color_classifier, NullAlarm(), recorder, StepClock(fps=15))
    last = recorder.frames[-1]
    assert [r.index for r in recorder.frames] == list(range(6))
    assert last.frame is frames[-1]
    assert set(last.stage_ms) == {"capture", "detect", "classify", "decide", "total"}
    assert last.stage_ms["total"] >= last.stage_ms["detect"] > 0
    assert last.fps == pytest.approx(15.0)
    (face,) = last.faces
    assert face.label == "with_mask" and face.track_id == 1 and len(face.keypoints) == 6
    assert face.scores.keys() == {"with_mask", "without_mask", "mask_weared_incorrect"}


class CountingClassifier:
    """The real colour classifier, counting the faces it is given."""

    def __init__(self, classifier):
        self.classifier, self.faces_per_frame = classifier, []

    def classify(self, frame, boxes, frame_order="BGR"):
        self.faces_per_frame.append(len(boxes))
        return self.classifier.classify(frame, boxes, frame_order)


def replay_stream(frames, color_classifier):
    """The daemon's setup: a stream detector, the default decision settings, 15 fps."""
    classifier, recorder = CountingClassifier(color_classifier), Recorder()
    summary = replay(frames, FaceDetector(stream=True), classifier, NullAlarm(), recorder)
    return summary, recorder, classifier


def test_a_settled_masked_person_is_classified_on_about_one_frame_in_three(color_classifier):
    summary, recorder, classifier = replay_stream(approaching("with_mask", 30), color_classifier)
    assert all(len(r.faces) == 1 for r in recorder.frames)  # seen on every frame (from 60 px)
    assert [r.faces[0].decision for r in recorder.frames[2:]] == ["ok"] * 28 and summary.events == []
    assert sum(classifier.faces_per_frame) <= 3 + 28 // 3 + 1  # 3 votes to decide, then one in three
    # frames without a look show the person's latest classification
    assert [r.faces[0].label for r in recorder.frames] == ["with_mask"] * 30


def test_a_settled_masked_person_who_pulls_the_mask_down_alarms_within_half_a_second(color_classifier):
    masked, bare = approaching("with_mask", 40), approaching("without_mask", 40)
    summary, recorder, _ = replay_stream(masked[:20] + bare[20:], color_classifier)
    assert recorder.frames[19].faces[0].decision == "ok"
    (event,) = summary.events
    assert event.label == "without_mask" and event.track_id == 1  # the same person, now a violator
    assert event.timestamp - recorder.frames[20].timestamp <= 0.5


def test_a_new_violator_alarms_within_half_a_second_with_a_stream_detector(color_classifier):
    frames = empty(5) + approaching("without_mask", 30) + empty(5)
    summary, recorder, _ = replay_stream(frames, color_classifier)
    (event,) = summary.events
    first_seen = next(r.timestamp for r in recorder.frames if r.faces)
    assert event.timestamp - first_seen <= 0.5
    assert first_seen == recorder.frames[5].timestamp  # found on the frame the person came in


class NullAlarm:
    def __init__(self):
        self.calls = []

    def alert(self, label):
        self.calls.append(("alert", label))

    def fault(self):
        self.calls.append(("fault",))

    def clear_fault(self):
        self.calls.append(("clear_fault",))

    def show_ok(self, on):
        pass


class ScriptedDetector:
    """Returns the same faces on every frame and counts its calls."""

    def __init__(self, boxes):
        self.faces = [Face(box=b, score=0.9, keypoints=()) for b in boxes]
        self.calls = 0

    def detect(self, frame, frame_order="BGR"):
        assert frame_order == "BGR"
        self.calls += 1
        return list(self.faces)


class ScriptedClassifier:
    def __init__(self, label="without_mask"):
        self.label = label
        self.boxes = []

    def classify(self, frame, boxes, frame_order="BGR"):
        self.boxes.append(list(boxes))
        scores = {"with_mask": 0.02, "without_mask": 0.02, "mask_weared_incorrect": 0.02, self.label: 0.96}
        return [Prediction(self.label, 0.96, scores) for _ in boxes]


FRAME = np.zeros((480, 640, 3), np.uint8)


def test_faces_that_cannot_vote_are_never_classified():
    classifier = ScriptedClassifier()
    detector = ScriptedDetector(
        [(100, 100, 110, 112), (0, 100, 80, 200), (300, 200, 380, 300)]
    )  # small, cut, ok
    faces, events, _ = process_frame(FRAME, 0.0, detector, classifier, Decider())
    assert classifier.boxes == [[(300, 200, 380, 300)]]
    assert [f.decision for f in faces] == ["ignored", "ignored", "pending"]
    assert [f.label for f in faces] == ["", "", "without_mask"]


class FlakyCamera:
    """Two frames, then unplugged for `outage` reads, then frames again."""

    name = "flaky"

    def __init__(self, state):
        self.state = state

    def open(self):
        if 2 <= self.state["reads"] < 2 + self.state["outage"]:
            self.state["reads"] += 1
            raise CameraError("not there")

    def read(self):
        self.state["reads"] += 1
        if 2 < self.state["reads"] <= 2 + self.state["outage"]:
            raise CameraError("unplugged")
        return FRAME

    def close(self):
        pass


def test_a_lost_camera_shows_the_fault_and_the_loop_carries_on_when_it_returns(pins):
    state = {"reads": 0, "outage": 4}
    source = RetryingSource(lambda: FlakyCamera(state), initial_s=0.01, max_s=0.02)
    recorder, idles = Recorder(), []
    with Alarm(AlarmConfig(led_pin=RED, buzzer_pin=None), pin_factory=pins) as alarm:
        summary = run_loop(
            source,
            ScriptedDetector([]),
            ScriptedClassifier(),
            Decider(),
            alarm,
            observers=[recorder],
            max_frames=6,
            on_idle=lambda: idles.append(alarm.state),
        )
        assert alarm.state == "idle"
    assert summary.frames == 6 and summary.camera_losses == 1
    assert recorder.camera == [True, False, True]
    assert idles and set(idles) == {"fault"}
    assert [s.state for s in pins.pin(RED).states][:2] == [False, True], "the fault flash was shown"


def test_a_broken_observer_is_logged_once_and_never_stops_the_loop(caplog):
    class Broken(Recorder):
        def on_frame(self, result):
            raise RuntimeError("bug in an observer")

    recorder = Recorder()
    summary = run_loop(
        FrameListSource([FRAME] * 5),
        ScriptedDetector([]),
        ScriptedClassifier(),
        Decider(),
        NullAlarm(),
        observers=[Broken(), recorder],
    )
    assert summary.frames == 5 and len(recorder.frames) == 5
    warnings = [r for r in caplog.records if "Broken.on_frame raised" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info


def test_alarm_events_reach_observers_with_their_frame_and_alarm_once():
    alarm, recorder = NullAlarm(), Recorder()
    frames = [FRAME.copy() for _ in range(10)]
    replay(frames, ScriptedDetector([(300, 200, 380, 300)]), ScriptedClassifier(), alarm, recorder)
    assert alarm.calls == [("alert", "without_mask")]
    (event,) = recorder.events
    assert event.frame is frames[2] and event.track_length == 3


class MainStreamCamera:
    """A picamera2-like source: 640x480 analysis frames, and the same moment at 1280x960 on request."""

    name = "main stream camera"

    def __init__(self, frames=10):
        self.left, self.reads = frames, 0

    def open(self):
        pass

    def read(self):
        if self.left == 0:
            return None
        self.left -= 1
        self.reads += 1
        return np.full((480, 640, 3), 40, np.uint8)

    def full_frame(self):
        return np.full((960, 1280, 3), 200 + self.reads, np.uint8)  # which frame it is, in its level

    def close(self):
        pass


def test_a_violation_snapshot_is_taken_from_the_sources_full_resolution_frame(tmp_path):
    from edge.observers.events import EventLog
    from edge.observers.snapshots import SnapshotSaver

    snapshots = SnapshotSaver(tmp_path / "snapshots", blur_others=False)
    events = EventLog(tmp_path, snapshots=snapshots)
    summary = run_loop(
        MainStreamCamera(),
        ScriptedDetector([(300, 200, 380, 300)]),
        ScriptedClassifier(),
        Decider(),
        NullAlarm(),
        observers=[snapshots, events],
        clock=StepClock(),
    )
    assert len(summary.events) == 1 and snapshots.flush() and events.flush()
    (path,) = snapshots.files()
    saved = cv2.imread(str(path))
    assert saved.shape == (960, 1280, 3), "camera.snapshot_width x snapshot_height, not the 640x480 analysed"
    assert 201 <= saved[10:100, 10:100].mean() <= 203, "one of the frames the person was seen in"
    red = saved[:, :, 2].astype(int) - saved[:, :, 1]
    assert red[400:600, 598:602].mean() > 100, "the face box at 2x (x1 = 300 -> 600)"
    snapshots.close()
    events.close()


def test_motion_gate_skips_detection_on_a_still_empty_scene_only():
    detector = ScriptedDetector([])
    recorder = Recorder()
    run_loop(
        FrameListSource([FRAME] * 10),
        detector,
        ScriptedClassifier(),
        Decider(),
        NullAlarm(),
        observers=[recorder],
        motion_gate=MotionGate(),
    )
    assert detector.calls == 1  # only the first frame, which had nothing to compare with
    assert [r.detection_skipped for r in recorder.frames] == [False] + [True] * 9
    # With someone tracked, a still scene is still analysed: a person standing still is not skipped.
    busy = ScriptedDetector([(300, 200, 380, 300)])
    run_loop(
        FrameListSource([FRAME] * 10),
        busy,
        ScriptedClassifier(),
        Decider(),
        NullAlarm(),
        motion_gate=MotionGate(),
    )
    assert busy.calls == 10


def test_stop_and_max_frames_end_the_loop():
    stop = threading.Event()
    forever = FrameListSource([FRAME], loop=True)
    summary = run_loop(
        forever, ScriptedDetector([]), ScriptedClassifier(), Decider(), NullAlarm(), max_frames=7
    )
    assert (summary.frames, summary.ended) == (7, "max frames")

    class StopAfter(Recorder):
        def on_frame(self, result):
            if result.index == 3:
                stop.set()

    summary = run_loop(
        forever,
        ScriptedDetector([]),
        ScriptedClassifier(),
        Decider(),
        NullAlarm(),
        observers=[StopAfter()],
        stop=stop,
    )
    assert (summary.frames, summary.ended) == (4, "stopped")


def test_stats_line_reports_fps_stage_latency_faces_alarms_and_camera(caplog):
    from edge.results import AlarmEvent, FrameResult
    from edge.stats import FpsMeter, StatsReporter

    clock = StepClock(fps=15, start=0.0)
    now = [0.0]
    stats = StatsReporter(interval_s=60, clock=lambda: now[0])
    caplog.set_level("INFO", logger="edge.stats")
    fps = FpsMeter()
    for i in range(900):  # one minute at 15 fps
        t = clock()
        now[0] = t
        ms = {"capture": 1.0, "detect": 2.0, "classify": 0.5, "decide": 0.05, "total": 3.6 + (i == 5)}
        stats.on_frame(
            FrameResult(i, t, FRAME, faces=(), stage_ms=ms, fps=fps.tick(t), detection_skipped=i < 10)
        )
    stats.on_event(
        AlarmEvent(timestamp=1.0, track_id=1, label="without_mask", score=0.9, track_length=3, face_px=80)
    )
    stats.on_camera(False)
    now[0] = 60.1
    stats.on_frame(FrameResult(900, 60.1, FRAME, faces=(), stage_ms={"total": 3.6}))
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        "stats: 15.0 fps over 60 s | ms/frame capture 1.00 detect 2.00 classify 0.50 decide 0.05 total 3.60"
    )
    assert "(worst 4.6)" in line and "detection skipped 10" in line
    assert "alarms 1 (without_mask 1) | camera lost" in line
    assert fps.tick(clock()) == pytest.approx(15.0)


def test_a_slow_observer_is_reported_once_after_three_slow_calls_in_a_row(caplog):
    class Slow(Recorder):
        def on_frame(self, result):
            time.sleep(0.03 if result.index in (0, 2, 3, 4, 6, 7, 8) else 0)

    run_loop(
        FrameListSource([FRAME] * 10),
        ScriptedDetector([]),
        ScriptedClassifier(),
        Decider(),
        NullAlarm(),
        observers=[Slow()],
    )
    warnings = [r.getMessage() for r in caplog.records if "Slow.on_frame took" in r.getMessage()]
    assert len(warnings) == 1 and "three times in a row" in warnings[0]
