"""Who is a violator: tracking, voting and cooldown, with no I/O and an injected clock.

One frame's classifier output is noisy, but a person walking towards the door is seen 10 to 30 times.
So faces are linked across frames into tracks by IoU, each track votes over its last N frames (a frame
whose top score sits in the uncertain band casts no vote), and a track decided to be a violation alarms
once, then not again for a cooldown. Faces that are too small, cut by the frame edge or outside the
region of interest are tracked but never vote. Neither does a face that has not moved for
`still_face_s`: people walk through an entrance, while a face on a poster, a picture on the wall or a
lamp the detector takes for a face stays put, and without this it would alarm again after every
cooldown, all day. Everything is plain numbers in and plain records out, so tests feed it timestamps
and boxes.

The classifier is the costliest stage per face, so the decider also says which faces it needs classified
(`to_classify`): every new, undecided or changing person on every frame, and a settled one (decided, and
its latest vote agreeing) on every `reclassify_every`th frame only. A frame that is not classified casts
no vote, so the votes are always the last classified frames; a settled person's first disagreeing vote
unsettles the track, and it is classified on every frame again until the vote decides.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from edge.config import DecisionConfig
from edge.results import AlarmEvent

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels

MASK_LABEL = "with_mask"
VIOLATION_LABELS = ("without_mask", "mask_weared_incorrect")

PENDING, OK, VIOLATION, IGNORED = "pending", "ok", "violation", "ignored"


@dataclass(frozen=True)
class Observation:
    """One face in one frame, as the decider needs it; label is None for faces that were not classified."""

    box: Box
    label: str | None = None
    score: float = 0.0
    scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FaceDecision:
    track_id: int
    decision: str  # pending | ok | violation | ignored
    reason: str = ""  # why ignored: "small", "edge", "roi" or "still"


@dataclass
class _Vote:
    label: str | None  # None: the frame was too uncertain to vote
    violation_prob: float


@dataclass
class Track:
    """One person seen across frames."""

    track_id: int
    box: Box
    first_seen: float
    last_seen: float
    frames_seen: int = 1
    votes: deque = field(default_factory=deque)
    decision: str = PENDING
    alarmed_at: float | None = None
    unclassified: int = 0  # frames seen since the face was last classified
    latest: Observation | None = None  # the latest classified look at the face
    anchor: Box | None = None  # where the face has stayed since `still_since` (within STILL_TOLERANCE)
    still_since: float = 0.0
    still: bool = False  # stayed put for still_face_s: a picture or fixture, ignored until it moves


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 for boxes that do not overlap."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


MAX_GROWTH = 2.0  # a face's height changes at most this much between two sightings of one person
STILL_TOLERANCE = 0.1  # of the face's height: a face whose centre and size stay this close has not moved


def same_place(a: Box, b: Box) -> bool:
    """Centres closer than half the larger box's height: one face that grew fast between two frames.

    Near the camera a face can grow by half its size from one frame to the next (at 5 fps on a slow Pi),
    and IoU alone would then call it a new person, who would alarm a second time.
    """
    dx = (a[0] + a[2] - b[0] - b[2]) / 2.0
    dy = (a[1] + a[3] - b[1] - b[3]) / 2.0
    reach = max(a[3] - a[1], b[3] - b[1]) / 2.0
    return dx * dx + dy * dy < reach * reach


def stayed_put(anchor: Box, box: Box) -> bool:
    """The centre within STILL_TOLERANCE of the anchor's height, and the height within that share too.

    A detector's box on a still picture jitters by a pixel or two; a person standing or talking at a
    desk usually moves their head by more than a tenth of its height well within a minute.
    """
    height = max(anchor[3] - anchor[1], 1e-6)
    dx = (anchor[0] + anchor[2] - box[0] - box[2]) / 2.0
    dy = (anchor[1] + anchor[3] - box[1] - box[3]) / 2.0
    limit = STILL_TOLERANCE * height
    return dx * dx + dy * dy <= limit * limit and abs((box[3] - box[1]) - height) <= limit


def similar_size(a: Box, b: Box) -> bool:
    """Heights within MAX_GROWTH of each other: the next person, small at the far end of the corridor,
    is not the one who just filled the frame at the same spot."""
    ha, hb = max(a[3] - a[1], 1e-6), max(b[3] - b[1], 1e-6)
    return max(ha, hb) / min(ha, hb) <= MAX_GROWTH


def match_boxes(
    tracks: Sequence[Box], faces: Sequence[Box], min_iou: float, fresh: Sequence[bool] | None = None
) -> dict[int, int]:
    """Greedy one-to-one matching, best IoU first: {face index: track index}.

    A pair links when the sizes are similar and either the IoU reaches `min_iou` or, for a track seen in
    the previous frame (`fresh`), the boxes are in the same place. A handful of faces per frame makes
    greedy matching as good as Hungarian and far simpler.
    """
    fresh = fresh if fresh is not None else [True] * len(tracks)
    pairs = []
    for ti, t in enumerate(tracks):
        for fi, f in enumerate(faces):
            overlap = iou(t, f)
            if (
                overlap > 0
                and similar_size(t, f)
                and (overlap >= min_iou or (fresh[ti] and same_place(t, f)))
            ):
                pairs.append((overlap, ti, fi))
    pairs.sort(reverse=True)
    matched: dict[int, int] = {}
    used_tracks: set[int] = set()
    for _, ti, fi in pairs:
        if ti in used_tracks or fi in matched:
            continue
        matched[fi] = ti
        used_tracks.add(ti)
    return matched


class Decider:
    """Turns per-frame classifications into per-person decisions and alarm events."""

    def __init__(self, config: DecisionConfig | None = None, track_ids: Iterator[int] | None = None):
        """`track_ids` numbers new people; the daemon passes one counter to every Decider it builds, so
        a person after a config reload never takes the id of somebody before it (observers keep
        snapshots and counts by track id)."""
        self.config = config or DecisionConfig()
        self._tracks: list[Track] = []
        self._track_ids = track_ids if track_ids is not None else itertools.count(1)
        self._last_update: float | None = None

    @property
    def tracks(self) -> tuple[Track, ...]:
        """The people currently tracked (read-only view for status pages and tests)."""
        return tuple(self._tracks)

    def ignore_reason(self, box: Box, frame_width: int, frame_height: int) -> str | None:
        """Why a face must not vote ("small", "edge", "roi"), or None if it counts.

        The loop asks this before classifying, so ignored faces cost no classifier time.
        """
        c = self.config
        x1, y1, x2, y2 = box
        if y2 - y1 < c.min_face_px:
            return "small"
        m = c.edge_margin_px
        if m and (x1 < m or y1 < m or x2 > frame_width - m or y2 > frame_height - m):
            return "edge"
        if c.roi:
            cx, cy = (x1 + x2) / 2.0 / frame_width, (y1 + y2) / 2.0 / frame_height
            rx1, ry1, rx2, ry2 = c.roi
            if not (rx1 <= cx <= rx2 and ry1 <= cy <= ry2):
                return "roi"
        return None

    def settled(self, track: Track) -> bool:
        """Decided (ok or violation), and the latest vote says the same: re-checking it can wait."""
        if track.decision not in (OK, VIOLATION) or not track.votes:
            return False
        latest = track.votes[-1].label
        return latest is not None and (latest in VIOLATION_LABELS) == (track.decision == VIOLATION)

    def to_classify(self, timestamp: float, frame_size: tuple[int, int], boxes: Sequence[Box]) -> list[bool]:
        """For each face box of the frame about to be fed to `update`, whether to classify it.

        Ignored faces never; faces of new or unsettled tracks always; faces of settled tracks when they
        have gone `reclassify_every` - 1 frames unclassified, at most ceil(settled / reclassify_every) of
        them per frame, longest waiting first, so the work spreads evenly over the frames.
        """
        every = self.config.reclassify_every
        tracks = self._live(timestamp)
        matched = self._match(tracks, boxes)
        wanted, due, settled = [False] * len(boxes), [], 0
        for index, box in enumerate(boxes):
            if self.ignore_reason(box, *frame_size) is not None:
                continue
            track = tracks[matched[index]] if index in matched else None
            if track is not None and track.still and stayed_put(track.anchor, box):
                continue
            if track is None or not self.settled(track):
                wanted[index] = True
                continue
            settled += 1
            if track.unclassified + 1 >= every:
                due.append((track.unclassified, index))
        for _, index in sorted(due, reverse=True)[: math.ceil(settled / every)]:
            wanted[index] = True
        return wanted

    def update(
        self, timestamp: float, frame_size: tuple[int, int], faces: Sequence[Observation]
    ) -> tuple[list[FaceDecision], list[AlarmEvent]]:
        """Feed one frame: a decision per face (same order) and the alarms this frame raises.

        A face whose `label` is None was not classified on this frame: it is tracked but casts no vote.
        """
        self._forget_stale(timestamp)
        tracks = self._assign(timestamp, faces)
        self._last_update = timestamp
        decisions, events = [], []
        for face, track in zip(faces, tracks, strict=True):
            if face.label is not None:
                track.unclassified, track.latest = 0, face
            else:
                track.unclassified += 1
            reason = self.ignore_reason(face.box, *frame_size) or ("still" if track.still else None)
            if reason is None and face.label is not None:
                self._vote(track, face)
            track.decision = self._decide(track)
            if reason is not None:
                decisions.append(FaceDecision(track.track_id, IGNORED, reason))
                continue
            decisions.append(FaceDecision(track.track_id, track.decision))
            if track.decision == VIOLATION and self._may_alarm(track, timestamp):
                track.alarmed_at = timestamp
                events.append(self._event(track, timestamp))
        return decisions, events

    def reset(self) -> None:
        self._tracks.clear()

    def _live(self, now: float) -> list[Track]:
        timeout = self.config.track_timeout_s
        return [t for t in self._tracks if now - t.last_seen <= timeout]

    def _forget_stale(self, now: float) -> None:
        self._tracks = self._live(now)

    def _match(self, tracks: Sequence[Track], boxes: Sequence[Box]) -> dict[int, int]:
        """{face index: index in `tracks`}: the same answer for `to_classify` and the `update` after it."""
        fresh = [t.last_seen == self._last_update for t in tracks]
        return match_boxes([t.box for t in tracks], list(boxes), self.config.track_iou, fresh)

    def _assign(self, now: float, faces: Sequence[Observation]) -> list[Track]:
        matched = self._match(self._tracks, [f.box for f in faces])
        assigned = []
        for index, face in enumerate(faces):
            if index in matched:
                track = self._tracks[matched[index]]
                track.box, track.last_seen = face.box, now
                track.frames_seen += 1
            else:
                track = Track(
                    next(self._track_ids), face.box, now, now, votes=deque(maxlen=self.config.vote_frames)
                )
                self._tracks.append(track)
            self._follow_stillness(track, face.box, now)
            assigned.append(track)
        return assigned

    def _follow_stillness(self, track: Track, box: Box, now: float) -> None:
        """Moves the track's anchor when the face moved; marks it still once it stayed `still_face_s`."""
        if track.anchor is None or not stayed_put(track.anchor, box):
            if track.still:
                log.info("track %d moved: counted again", track.track_id)
            track.anchor, track.still_since, track.still = box, now, False
            return
        limit = self.config.still_face_s
        if limit > 0 and not track.still and now - track.still_since >= limit:
            track.still = True
            log.info(
                "track %d has not moved for %.0f s: taken for a picture, poster or lamp, ignored until it moves",
                track.track_id,
                now - track.still_since,
            )

    def _vote(self, track: Track, face: Observation) -> None:
        confident = face.score >= 0.5 + self.config.uncertain_band
        violation_prob = sum(float(face.scores.get(label, 0.0)) for label in VIOLATION_LABELS)
        if not face.scores and face.label in VIOLATION_LABELS:
            violation_prob = face.score
        track.votes.append(_Vote(face.label if confident else None, violation_prob))

    def _decide(self, track: Track) -> str:
        cast = [v.label for v in track.votes if v.label is not None]
        if len(cast) < self.config.min_votes:
            return PENDING
        violations = sum(label in VIOLATION_LABELS for label in cast) / len(cast)
        if violations >= self.config.violation_ratio:
            return VIOLATION
        if 1.0 - violations >= self.config.violation_ratio:
            return OK
        return PENDING

    def _may_alarm(self, track: Track, now: float) -> bool:
        return track.alarmed_at is None or now - track.alarmed_at >= self.config.cooldown_s

    def _event(self, track: Track, now: float) -> AlarmEvent:
        cast = [v for v in track.votes if v.label is not None]
        counts = Counter(v.label for v in cast if v.label in VIOLATION_LABELS)
        # Ties go to "without_mask": the more serious of the two.
        label = max(VIOLATION_LABELS, key=lambda name: (counts[name], name == "without_mask"))
        score = sum(v.violation_prob for v in cast) / len(cast)
        x1, y1, x2, y2 = track.box
        log.info(
            "track %d decided %s (%d of %d votes, violation p=%.2f, face %d px)",
            track.track_id,
            label,
            sum(counts.values()),
            len(cast),
            score,
            y2 - y1,
        )
        return AlarmEvent(
            timestamp=now,
            track_id=track.track_id,
            label=label,
            score=float(score),
            track_length=track.frames_seen,
            face_px=int(round(y2 - y1)),
            box=(float(x1), float(y1), float(x2), float(y2)),
        )
