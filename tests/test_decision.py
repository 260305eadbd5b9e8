"""The decision logic on plain numbers: boxes, scores and timestamps at 15 fps."""

from __future__ import annotations

import pytest

from edge.config import DecisionConfig
from edge.decision import (
    IGNORED,
    OK,
    PENDING,
    VIOLATION,
    Decider,
    Observation,
    iou,
    match_boxes,
    stayed_put,
)

FPS = 15.0
FRAME = (640, 480)
MASKED = {"with_mask": 0.95, "without_mask": 0.03, "mask_weared_incorrect": 0.02}
BARE = {"with_mask": 0.02, "without_mask": 0.96, "mask_weared_incorrect": 0.02}
WRONG = {"with_mask": 0.05, "without_mask": 0.10, "mask_weared_incorrect": 0.85}
UNSURE = {"with_mask": 0.45, "without_mask": 0.40, "mask_weared_incorrect": 0.15}


def seen(box, scores) -> Observation:
    label = max(scores, key=scores.get)
    return Observation(box=box, label=label, score=scores[label], scores=scores)


def walk(decider, frames, scores, start=0, box=(200, 150, 280, 250)):
    """One person in view for `frames` frames; returns (decisions per frame, all events)."""
    decisions, events = [], []
    for i in range(start, start + frames):
        d, e = decider.update(i / FPS, FRAME, [seen(box, scores)])
        decisions.append(d[0])
        events.extend(e)
    return decisions, events


def test_iou_of_identical_disjoint_and_half_overlapping_boxes():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_match_boxes_is_one_to_one_and_best_first():
    tracks = [(0, 0, 10, 10), (100, 100, 120, 120)]
    faces = [(101, 101, 121, 121), (1, 1, 11, 11), (300, 300, 310, 310)]
    assert match_boxes(tracks, faces, 0.3) == {0: 1, 1: 0}


def test_a_violator_alarms_once_on_the_min_votes_frame():
    decider = Decider(DecisionConfig(vote_frames=5, min_votes=3, cooldown_s=30))
    decisions, events = walk(decider, 60, BARE)
    assert [d.decision for d in decisions[:3]] == [PENDING, PENDING, VIOLATION]
    assert len(events) == 1
    event = events[0]
    assert event.label == "without_mask"
    assert event.timestamp == pytest.approx(2 / FPS)  # 0.13 s after the person appeared, well within 0.5 s
    assert event.track_length == 3 and event.face_px == 100
    assert event.score == pytest.approx(0.98)


def test_masked_faces_never_alarm_over_1000_frames():
    decider = Decider(DecisionConfig(still_face_s=0))  # votes on all 1000 frames of the face that stays put
    decisions, events = walk(decider, 1000, MASKED)
    assert events == []
    assert decisions[-1].decision == OK


def test_a_worn_wrong_mask_alarms_with_its_own_label():
    _, events = walk(Decider(DecisionConfig()), 10, WRONG)
    assert [e.label for e in events] == ["mask_weared_incorrect"]


def test_uncertain_frames_cast_no_vote():
    decider = Decider(DecisionConfig(vote_frames=5, min_votes=3, uncertain_band=0.15))
    decisions, events = walk(decider, 30, UNSURE)
    assert {d.decision for d in decisions} == {PENDING}
    assert events == []


def test_one_wrong_frame_among_masked_ones_does_not_alarm():
    decider = Decider(DecisionConfig(vote_frames=5, min_votes=3, violation_ratio=0.6))
    events = []
    for i in range(40):
        scores = BARE if i % 5 == 2 else MASKED  # a misclassification every fifth frame
        events += decider.update(i / FPS, FRAME, [seen((200, 150, 280, 250), scores)])[1]
    assert events == []


def test_cooldown_allows_a_second_alarm_for_the_same_person_only_after_it_passed():
    decider = Decider(DecisionConfig(cooldown_s=2.0))
    _, events = walk(decider, int(4.5 * FPS), BARE)
    assert [round(e.timestamp, 2) for e in events] == [0.13, 2.13, 4.13]
    assert {e.track_id for e in events} == {1}


def test_two_people_are_two_tracks_and_each_alarms_once():
    decider = Decider(DecisionConfig())
    events = []
    for i in range(20):
        faces = [seen((50, 100, 130, 200), BARE), seen((400, 100, 480, 200), WRONG)]
        decisions, new = decider.update(i / FPS, FRAME, faces)
        events += new
    assert sorted(e.label for e in events) == ["mask_weared_incorrect", "without_mask"]
    assert {d.track_id for d in decisions} == {1, 2}


def test_a_person_walking_towards_the_camera_keeps_one_track():
    decider = Decider(DecisionConfig())
    ids = set()
    for i in range(30):
        grow = 3 * i  # the face grows 6 px a frame
        box = (300 - grow, 200 - grow, 340 + grow, 250 + grow)
        decisions, _ = decider.update(i / FPS, FRAME, [seen(box, MASKED)])
        ids.add(decisions[0].track_id)
    assert ids == {1}


def test_a_face_that_doubles_in_size_between_frames_is_the_same_person():
    decider = Decider(DecisionConfig(track_iou=0.3))
    boxes = [
        (280, 190, 340, 250),
        (265, 175, 355, 265),
        (230, 140, 410, 320),
    ]  # 60, 90, 180 px: IoU 0.25 last
    assert iou(boxes[1], boxes[2]) < 0.3
    ids = [decider.update(i / FPS, FRAME, [seen(b, BARE)])[0][0].track_id for i, b in enumerate(boxes)]
    assert ids == [1, 1, 1]


def test_the_next_person_far_away_at_the_spot_where_the_last_one_left_is_a_new_person():
    decider = Decider(DecisionConfig(track_timeout_s=2.0))
    _, events = walk(decider, 10, BARE, box=(240, 150, 440, 350))  # 200 px: right at the camera, then gone
    assert len(events) == 1
    # 1.5 s later someone else appears far away, inside the old box: small, same place, new person.
    _, events = walk(decider, 5, BARE, start=32, box=(276, 171, 324, 219))
    assert len(events) == 1 and events[0].track_id == 2


def test_a_face_is_not_linked_to_a_much_larger_or_smaller_one():
    assert match_boxes([(240, 150, 440, 350)], [(276, 171, 324, 219)], 0.3) == {}
    assert match_boxes([(240, 150, 440, 350)], [(276, 171, 324, 219)], 0.01) == {}  # even with a low IoU bar


def test_two_people_side_by_side_stay_two_tracks():
    decider = Decider(DecisionConfig())
    for i in range(10):
        shift = 4 * i
        faces = [
            seen((200 + shift, 150, 280 + shift, 250), BARE),
            seen((290 + shift, 150, 370 + shift, 250), MASKED),
        ]
        decisions, _ = decider.update(i / FPS, FRAME, faces)
    assert [d.track_id for d in decisions] == [1, 2]
    assert [d.decision for d in decisions] == [VIOLATION, OK]


def test_a_track_survives_a_short_dropout_but_not_the_timeout():
    decider = Decider(DecisionConfig(track_timeout_s=1.0))
    box = (200, 150, 280, 250)
    _, events = walk(decider, 5, BARE, box=box)
    assert len(events) == 1
    # Lost for 0.5 s: the same person, no second alarm.
    _, events = walk(decider, 5, BARE, start=12, box=box)
    assert events == [] and decider.tracks[0].track_id == 1
    # Gone for 2 s: someone new at that spot is a new person.
    _, events = walk(decider, 5, BARE, start=60, box=box)
    assert len(events) == 1 and events[0].track_id == 2


@pytest.mark.parametrize(
    ("box", "reason"),
    [
        ((200, 150, 220, 170), "small"),  # 20 px high, min_face_px 32
        ((0, 150, 80, 250), "edge"),
        ((580, 150, 640, 250), "edge"),
        ((200, 420, 280, 480), "edge"),
    ],
)
def test_small_and_cut_faces_are_ignored_and_never_alarm(box, reason):
    decider = Decider(DecisionConfig(min_face_px=32, edge_margin_px=4))
    assert decider.ignore_reason(box, *FRAME) == reason
    decisions, events = walk(decider, 20, BARE, box=box)
    assert {(d.decision, d.reason) for d in decisions} == {(IGNORED, reason)}
    assert events == []


def test_roi_keeps_only_faces_centred_inside_it():
    decider = Decider(DecisionConfig(roi=[0.5, 0.0, 1.0, 1.0]))
    assert decider.ignore_reason((100, 100, 180, 200), *FRAME) == "roi"
    assert decider.ignore_reason((400, 100, 480, 200), *FRAME) is None
    _, events = walk(decider, 10, BARE, box=(100, 100, 180, 200))
    assert events == []


def test_a_frame_cut_by_the_edge_neither_votes_nor_drops_earlier_votes():
    decider = Decider(DecisionConfig(vote_frames=5, min_votes=3, edge_margin_px=4))
    inside, cut = (10, 150, 90, 250), (2, 150, 82, 250)
    walk(decider, 2, BARE, box=inside)
    decisions, events = walk(decider, 1, BARE, start=2, box=cut)
    assert decisions[0].decision == IGNORED and events == []
    decisions, events = walk(decider, 1, BARE, start=3, box=inside)
    assert decisions[0].decision == VIOLATION and len(events) == 1 and events[0].track_id == 1


def test_unclassified_faces_are_tracked_but_do_not_vote():
    decider = Decider(DecisionConfig())
    for i in range(10):
        decisions, events = decider.update(i / FPS, FRAME, [Observation((200, 150, 280, 250))])
        assert events == [] and decisions[0].decision == PENDING
    assert decider.tracks[0].frames_seen == 10


# --- which faces the classifier sees: settled people less often ----------------------------------------


def people_in_view(decider, frames, looks, start=0, boxes=((200, 150, 280, 250),)):
    """The loop's order on plain numbers: ask `to_classify`, "classify" the faces it wants (each person's
    scores on that frame are `looks(frame, person)`), feed the rest unclassified.

    Returns, per frame, which faces were classified and the decisions, and all events.
    """
    classified, decisions, events = [], [], []
    for i in range(start, start + frames):
        wanted = decider.to_classify(i / FPS, FRAME, list(boxes))
        faces = [
            seen(box, looks(i, person)) if want else Observation(box)
            for person, (box, want) in enumerate(zip(boxes, wanted, strict=True))
        ]
        d, e = decider.update(i / FPS, FRAME, faces)
        classified.append(wanted)
        decisions.append([x.decision for x in d])
        events.extend(e)
    return classified, decisions, events


def test_a_settled_masked_person_is_classified_on_every_third_frame_only():
    decider = Decider(DecisionConfig(reclassify_every=3))
    classified, decisions, events = people_in_view(decider, 30, lambda i, p: MASKED)
    # three votes to decide, then one frame in three
    assert [c[0] for c in classified[:9]] == [True, True, True, False, False, True, False, False, True]
    assert sum(c[0] for c in classified) == 3 + 9
    assert [d[0] for d in decisions[2:]] == [OK] * 28 and events == []


def test_a_new_violator_is_classified_on_every_frame_and_alarms_on_the_min_votes_frame():
    decider = Decider(DecisionConfig(reclassify_every=3, vote_frames=5, min_votes=3))
    classified, _, events = people_in_view(decider, 3, lambda i, p: BARE)
    assert classified == [[True]] * 3
    assert len(events) == 1 and events[0].timestamp == pytest.approx(2 / FPS)


@pytest.mark.parametrize("pulled_down_at", [20, 21, 22])  # every phase of the every-third-frame look
def test_a_settled_masked_person_who_pulls_the_mask_down_alarms_within_five_frames(pulled_down_at):
    decider = Decider(DecisionConfig(reclassify_every=3, vote_frames=5, min_votes=3))

    def looks(frame, person):
        return MASKED if frame < pulled_down_at else BARE

    _, decisions, events = people_in_view(decider, 40, looks)
    assert decisions[pulled_down_at - 1] == [OK]
    (event,) = events
    # at most reclassify_every - 1 frames until the next look, then min_votes looks in a row
    assert event.timestamp - pulled_down_at / FPS <= (3 - 1 + 3 - 1) / FPS + 1e-9
    assert event.label == "without_mask"


def test_frames_that_are_not_classified_cast_no_vote():
    decider = Decider(DecisionConfig(reclassify_every=3, vote_frames=5))
    people_in_view(decider, 7, lambda i, p: MASKED)  # classified on frames 0, 1, 2 and 5
    (track,) = decider.tracks
    assert len(track.votes) == 4 and track.frames_seen == 7


def test_an_unsure_look_at_a_settled_person_brings_back_a_look_on_every_frame():
    decider = Decider(DecisionConfig(reclassify_every=3))
    classified, _, _ = people_in_view(decider, 12, lambda i, p: UNSURE if i == 5 else MASKED)
    assert [c[0] for c in classified[5:9]] == [True, True, False, False]  # unsure at 5, sure again at 6


def test_six_settled_people_share_the_classifier_evenly():
    decider = Decider(DecisionConfig(reclassify_every=3))
    boxes = [(10 + 105 * k, 150, 90 + 105 * k, 250) for k in range(6)]
    classified, _, _ = people_in_view(decider, 30, lambda i, p: MASKED, boxes=boxes)
    per_frame = [sum(c) for c in classified]
    assert per_frame[:3] == [6, 6, 6]
    assert per_frame[9:] == [2] * 21  # ceil(6 / 3) a frame once the looks have spread out
    for person in range(6):  # and each person at least every third frame
        looks = [i for i, c in enumerate(classified) if c[person]]
        assert max(b - a for a, b in zip(looks[3:], looks[4:], strict=False)) <= 3


def test_reclassify_every_1_classifies_every_face_on_every_frame():
    decider = Decider(DecisionConfig(reclassify_every=1))
    classified, _, _ = people_in_view(decider, 10, lambda i, p: MASKED)
    assert classified == [[True]] * 10


def test_ignored_faces_are_never_to_be_classified():
    decider = Decider(DecisionConfig(min_face_px=32, edge_margin_px=4))
    assert decider.to_classify(
        0.0, FRAME, [(200, 150, 220, 170), (0, 150, 80, 250), (200, 150, 280, 250)]
    ) == [
        False,
        False,
        True,
    ]


# --- faces that never move: posters, pictures, lamps --------------------------------------------------------

POSTER = (200.0, 150.0, 280.0, 250.0)  # 100 px tall


def jittered(box, i, px=2.0):
    """The box a detector draws on a still picture: a pixel or two off, frame to frame."""
    d = px if i % 2 else -px
    return (box[0] + d, box[1] - d, box[2] + d, box[3] - d / 2)


def test_a_box_that_jitters_has_stayed_put_and_one_that_moved_a_tenth_of_its_height_has_not():
    assert stayed_put(POSTER, jittered(POSTER, 1))
    assert not stayed_put(POSTER, (211, 150, 291, 250))  # 11 px sideways
    assert not stayed_put(POSTER, (195, 139, 285, 250))  # 11 px taller


def test_a_face_on_a_poster_alarms_once_then_is_ignored_after_still_face_s():
    decider = Decider(DecisionConfig(cooldown_s=30, still_face_s=60))
    events, decisions = [], []
    for i in range(int(150 * FPS)):  # two and a half minutes of an unmasked face that never moves
        box = jittered(POSTER, i)
        wanted = decider.to_classify(i / FPS, FRAME, [box])
        d, e = decider.update(i / FPS, FRAME, [seen(box, BARE) if wanted[0] else Observation(box)])
        events += e
        decisions.append((d[0], wanted[0]))
    assert [round(e.timestamp) for e in events] == [0, 30]  # not at 60, 90 and 120: a picture by then
    after = [(d, wanted) for d, wanted in decisions[int(61 * FPS) :]]
    assert all(d.decision == IGNORED and d.reason == "still" for d, _ in after)
    assert not any(wanted for _, wanted in after), "a still face costs no classifier time"


def test_a_person_who_keeps_moving_is_never_taken_for_a_picture():
    decider = Decider(DecisionConfig(cooldown_s=30, still_face_s=60))
    events = []
    for i in range(int(150 * FPS)):  # standing at the desk, the head moving 12 px every 20 s
        shift = 12.0 * ((i // int(20 * FPS)) % 2)
        box = (POSTER[0] + shift, POSTER[1], POSTER[2] + shift, POSTER[3])
        events += decider.update(i / FPS, FRAME, [seen(box, BARE)])[1]
    assert [round(e.timestamp) for e in events] == [0, 30, 60, 90, 120]
    assert {e.track_id for e in events} == {1}


def test_a_still_face_that_moves_counts_again():
    decider = Decider(DecisionConfig(cooldown_s=30, still_face_s=60))
    for i in range(int(70 * FPS)):
        decisions, _ = decider.update(i / FPS, FRAME, [seen(POSTER, BARE)])
    assert decisions[0].reason == "still"
    moved = (POSTER[0] + 30, POSTER[1], POSTER[2] + 30, POSTER[3])
    start = int(70 * FPS)
    decisions, events = decider.update(start / FPS, FRAME, [seen(moved, BARE)])
    assert decisions[0].decision == VIOLATION and decisions[0].track_id == 1
    assert [round(e.timestamp) for e in events] == [70]  # the cooldown since 30 s has passed


def test_still_face_s_zero_never_ignores_a_face_for_staying_put():
    decider = Decider(DecisionConfig(cooldown_s=30, still_face_s=0))
    _, events = walk(decider, int(100 * FPS), BARE, box=POSTER)
    assert [round(e.timestamp) for e in events] == [0, 30, 60, 90]
