"""Events log, daily counts, snapshots, face crops: real files, real rotation, a really full disk."""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from loop_records import FakeClock, alarm, face, frame_result, textured

from edge.observers.crops import CropCollector
from edge.observers.events import EventLog
from edge.observers.snapshots import RETENTION_EVERY_S, SnapshotSaver
from edge.observers.storage import STALE_TMP_S, DiskGuard, prune_files

DAY = 86400.0


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- events log -------------------------------------------------------------------------------------------


def test_log_rotates_by_size_and_keeps_the_newest(tmp_path):
    clock = FakeClock()
    log = EventLog(tmp_path, max_bytes=1000, keep=2, clock=clock)
    for i in range(30):
        clock.advance(1)
        log.on_event(alarm(track_id=i, score=0.5 + i / 100))
    assert log.flush()
    log.close()

    files = [tmp_path / "events.jsonl", tmp_path / "events.jsonl.1", tmp_path / "events.jsonl.2"]
    assert all(f.exists() for f in files)
    assert not (tmp_path / "events.jsonl.3").exists()
    assert all(0 < f.stat().st_size <= 1000 for f in files)
    kept = [r["track_id"] for f in reversed(files) for r in read_lines(f)]
    assert kept == list(range(30 - len(kept), 30)), "the rotated files hold the newest events, in order"
    assert len(kept) < 30
    record = read_lines(files[0])[-1]
    assert record["class"] == "without_mask" and record["track_length"] == 6 and record["face_px"] == 120
    assert set(record) >= {"id", "time", "ts", "class", "score", "track_id", "track_length", "face_px", "box"}


def test_a_line_torn_by_a_power_cut_costs_only_itself(tmp_path):
    """A power cut can leave the log's last line half written; the next event must start on a new line,
    or it is glued to the torn one and lost to every reader too."""
    clock = FakeClock()
    (tmp_path / "events.jsonl").write_text('{"id": "a", "class": "without_mask"}\n{"id": "b", "cla')
    log = EventLog(tmp_path, clock=clock)
    log.on_event(alarm(track_id=7))
    log.on_event(alarm(track_id=8))
    assert log.flush()
    log.close()
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert lines[1] == '{"id": "b", "cla'
    assert [json.loads(line)["track_id"] for line in lines[2:]] == [7, 8]


def test_each_event_is_on_the_card_before_the_next_can_be_lost(tmp_path, disk_calls):
    """An alarm's line is fsynced as it is written, not when the OS gets round to it: a power cut right
    after an alarm (a tripped fuse at the door) must not take its record."""
    log = EventLog(tmp_path, clock=FakeClock())
    log.on_event(alarm(track_id=7))
    assert log.flush()
    log.close()
    synced = [data for kind, target, data in disk_calls if kind == "fsync" and target.name == "events.jsonl"]
    assert len(synced) == 1 and json.loads(synced[0])["track_id"] == 7


def test_daily_counts_survive_a_restart_and_roll_over(tmp_path):
    clock = FakeClock()  # Wednesday
    log = EventLog(tmp_path, clock=clock)
    log.on_event(alarm(track_id=1))
    log.on_event(alarm(track_id=2, label="mask_weared_incorrect"))
    for i in range(3):  # one masked person seen on three frames counts once
        log.on_frame(frame_result(i, [face(label="with_mask", track_id=7, decision="ok")]))
    log.on_frame(frame_result(3, [face(label="with_mask", track_id=8, decision="pending")]))  # undecided
    clock.advance(DAY)  # Thursday
    log.on_event(alarm(track_id=3))
    assert log.flush()
    log.close()

    restarted = EventLog(tmp_path, clock=clock)
    assert restarted.today() == {"without_mask": 1}
    assert restarted.this_week() == {"without_mask": 2, "mask_weared_incorrect": 1, "with_mask": 1}
    assert [e["track_id"] for e in restarted.recent()] == [3, 2, 1], "the last events survive too"

    clock.advance(5 * DAY)  # the next Tuesday: a new week
    restarted.on_event(alarm(track_id=4))
    assert restarted.today() == {"without_mask": 1}
    assert restarted.this_week() == {"without_mask": 1}
    restarted.close()


def test_a_violator_is_not_also_counted_as_masked(tmp_path):
    log = EventLog(tmp_path, clock=FakeClock())
    log.on_event(alarm(track_id=5))
    log.on_frame(frame_result(0, [face(label="with_mask", track_id=5, decision="ok")]))
    assert log.today() == {"without_mask": 1}
    log.close()


def test_unreadable_counts_file_starts_from_zero(tmp_path, caplog):
    (tmp_path / "counts.json").write_text("{not json")
    log = EventLog(tmp_path, clock=FakeClock())
    assert log.today() == {}
    assert "unreadable" in caplog.text
    log.on_event(alarm())
    assert log.flush()
    assert json.loads((tmp_path / "counts.json").read_text())["days"]
    log.close()


def test_full_disk_stops_the_log_with_one_line_and_resumes_later(tmp_path, caplog):
    """/dev/full answers every write with ENOSPC, from the kernel: the log file is a link to it."""
    (tmp_path / "events.jsonl").symlink_to("/dev/full")
    mono = FakeClock(0.0)
    log = EventLog(tmp_path, clock=FakeClock(), guard=DiskGuard("events log", retry_s=600, clock=mono))
    caplog.set_level(logging.INFO)

    started = time.perf_counter()
    for i in range(5):
        log.on_event(alarm(track_id=i))
    assert time.perf_counter() - started < 0.05, "observer calls never wait for the disk"
    assert log.flush()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "one line says saving stopped, not one per event"
    assert "No space left on device" in errors[0].getMessage()
    assert "daemon keeps running" in errors[0].getMessage()
    assert log.guard.error == os.strerror(errno.ENOSPC)
    assert log.today() == {"without_mask": 5}, "counting goes on in memory"

    (tmp_path / "events.jsonl").unlink()  # space again
    mono.advance(601)
    log.on_event(alarm(track_id=9))
    assert log.flush()
    assert log.guard.error is None
    assert [r["track_id"] for r in read_lines(tmp_path / "events.jsonl")] == [9]
    assert "writing again" in caplog.text
    log.close()


# -- snapshots --------------------------------------------------------------------------------------------


def _level(image: np.ndarray) -> float:
    return float(image[5:40, 5:40].mean())


def test_snapshot_is_the_largest_sharpest_highest_scoring_frame(tmp_path):
    saver = SnapshotSaver(tmp_path / "snaps", clock=FakeClock())
    small = (300.0, 200.0, 350.0, 260.0)
    large = (200.0, 100.0, 350.0, 280.0)
    blurry = textured(level=100, seed=2)
    x1, y1, x2, y2 = (int(v) for v in large)
    blurry[y1:y2, x1:x2] = cv2.GaussianBlur(blurry[y1:y2, x1:x2], (31, 31), 10)
    frames = [
        (textured(level=50, seed=1), small, 0.9),  # sharp, high score, but small
        (blurry, large, 0.9),  # large, high score, but blurred
        (textured(level=150, seed=3), large, 0.85),  # large, sharp, good score: the one
        (textured(level=200, seed=4), large, 0.55),  # large, sharp, weak score
    ]
    for i, (image, box, score) in enumerate(frames):
        saver.on_frame(frame_result(i, [face(box=box, score=score)], image=image))
    name = saver.save(alarm(box=large, image=frames[-1][0]), "20240501-080000-t1")
    assert name == "20240501-080000-t1_without_mask.jpg"
    assert saver.flush()
    saved = cv2.imread(str(tmp_path / "snaps" / name))
    assert saved.shape == (480, 640, 3)
    assert abs(_level(saved) - 150) < 10
    saver.close()


def test_snapshot_pixelates_other_faces(tmp_path):
    saver = SnapshotSaver(tmp_path, blur_others=True, clock=FakeClock())
    image = textured(seed=5)
    violator, bystander = (60.0, 60.0, 220.0, 260.0), (380.0, 80.0, 540.0, 280.0)
    saver.on_frame(
        frame_result(
            0,
            [face(box=violator, track_id=1), face(box=bystander, label="with_mask", track_id=2)],
            image=image,
        )
    )
    name = saver.save(alarm(box=violator, image=image), "x-t1")
    assert saver.flush()
    saved = cv2.imread(str(tmp_path / name), cv2.IMREAD_GRAYSCALE)

    def detail(box):
        x1, y1, x2, y2 = (int(v) for v in box)
        return cv2.Laplacian(saved[y1 + 10 : y2 - 10, x1 + 10 : x2 - 10], cv2.CV_64F).var()

    assert detail(violator) > 20 * detail(bystander)
    saver.close()


def test_snapshot_is_drawn_on_the_full_resolution_frame_where_the_source_has_one(tmp_path):
    """picamera2: the loop hands over the main stream (here 1280x960) of the analysed 640x480 frame."""
    saver = SnapshotSaver(tmp_path, blur_others=True, clock=FakeClock())
    analysis, full = textured(seed=7), textured(shape=(960, 1280, 3), level=160, seed=8)
    copies = []

    def full_frame():
        copies.append(1)
        return full.copy()

    violator, bystander = (60.0, 60.0, 220.0, 260.0), (380.0, 80.0, 540.0, 280.0)
    faces = [
        face(box=violator, track_id=1),
        face(box=bystander, label="with_mask", score=0.95, track_id=2),
        face(box=(250.0, 300.0, 330.0, 400.0), label="without_mask", score=0.8, track_id=3),
    ]
    result = replace(frame_result(0, faces, image=analysis), full_frame=full_frame)
    saver.on_frame(result)
    assert len(copies) == 1, "one copy per frame, shared by every violator in it"
    saver.on_frame(replace(frame_result(1, [faces[1]], image=analysis), full_frame=full_frame))
    assert len(copies) == 1, "no copy for a frame with only masked people"

    name = saver.save(alarm(box=violator, image=analysis), "x-t1")
    assert saver.flush()
    saved = cv2.imread(str(tmp_path / name))
    assert saved.shape == (960, 1280, 3)
    assert abs(float(saved[700:900, 900:1200].mean()) - 160) < 10, "the full frame's picture"
    gray = cv2.cvtColor(saved, cv2.COLOR_BGR2GRAY)

    def detail(box):  # boxes in analysis pixels, looked up at twice the size
        x1, y1, x2, y2 = (int(v * 2) for v in box)
        return cv2.Laplacian(gray[y1 + 20 : y2 - 20, x1 + 20 : x2 - 20], cv2.CV_64F).var()

    assert detail(violator) > 20 * detail(bystander), "the bystander pixelated where they are at 1280x960"
    red = saved[:, :, 2].astype(int) - saved[:, :, 1]
    assert red[120:520, 119:122].mean() > 100 and red[120:520, 438:441].mean() > 100, "box at 2x"
    saver.close()


def test_snapshot_retention_by_days_and_total_size(tmp_path):
    clock = FakeClock()
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    for i, age_days in enumerate([30, 8, 3, 2, 1, 0.5]):
        f = snaps / f"old{i}.jpg"
        f.write_bytes(b"x" * 1000)
        os.utime(f, (clock() - age_days * DAY,) * 2)
    (snaps / "notes.txt").write_text("not a snapshot, never deleted")

    saver = SnapshotSaver(snaps, keep_days=7, max_bytes=2500, clock=clock)
    assert saver.flush()
    assert sorted(p.name for p in saver.files()) == ["old4.jpg", "old5.jpg"], "over 7 days, then oldest"
    assert (snaps / "notes.txt").exists()

    image = textured(seed=6)
    saver.on_frame(frame_result(0, [face()], image=image))
    name = saver.save(alarm(image=image), "new-t1")  # a real JPEG, far above the 2500 bytes left
    assert saver.flush()
    assert [p.name for p in saver.files()] == [name], "a new snapshot pushes the oldest out"
    saver.close()


def test_old_snapshots_are_deleted_even_when_no_new_ones_are_taken(tmp_path):
    """Snapshots show faces: "deleted after snapshot_keep_days" must hold in a quiet week too, not only
    when the next violation is saved or the daemon restarts."""
    clock = FakeClock()
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    old = snaps / "20240501-080000-t1_without_mask.jpg"
    old.write_bytes(b"x" * 1000)
    os.utime(old, (clock(),) * 2)
    saver = SnapshotSaver(snaps, keep_days=7, max_bytes=1e9, clock=clock)
    assert saver.flush() and old.exists()

    for day in range(1, 10):  # the daemon watches an empty doorway for nine days
        clock.advance(DAY)
        saver.on_frame(frame_result(day, []))
        assert saver.flush()
        assert old.exists() == (day <= 7), day
    saver.close()


def test_prune_files_keeps_everything_within_limits(tmp_path):
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.jpg")
        files[-1].write_bytes(b"x" * 100)
    assert prune_files(files, now=time.time(), keep_days=0, max_bytes=300) == []
    assert prune_files(files, now=time.time(), keep_days=0, max_bytes=299) == [files[0]]
    assert prune_files(files[1:], now=time.time(), keep_days=0, max_bytes=10) == [files[1]], "newest stays"


def test_a_half_written_snapshot_left_by_a_power_cut_is_deleted_at_start_and_hourly(tmp_path):
    """A power cut mid-write leaves the temporary file; nothing else would ever delete it. One still being
    written (younger than the grace period) stays."""
    clock = FakeClock()
    snaps = tmp_path / "snaps"
    snaps.mkdir()

    def temporary(name: str, age_s: float) -> Path:
        path = snaps / f"{name}.jpg.tmp"
        path.write_bytes(b"half a jpeg")
        os.utime(path, (clock() - age_s,) * 2)
        return path

    kept = snaps / "20240501-075000-t1_without_mask.jpg"
    kept.write_bytes(b"x" * 1000)
    os.utime(kept, (clock() - 3600,) * 2)
    (snaps / "notes.tmp").write_text("not a snapshot's, never deleted")
    cut = temporary("20240501-075900-t2_without_mask", STALE_TMP_S + 1)
    writing = temporary("20240501-080000-t3_without_mask", 5)

    saver = SnapshotSaver(snaps, keep_days=7, max_bytes=1e9, clock=clock)
    assert saver.flush()
    assert not cut.exists(), "deleted at start"
    assert writing.exists() and kept.exists() and (snaps / "notes.tmp").exists()

    clock.advance(RETENTION_EVERY_S)  # the write was cut too; an hour later, a quiet doorway
    newer = temporary("20240501-090000-t4_without_mask", 1)
    saver.on_frame(frame_result(1, []))
    assert saver.flush()
    assert not writing.exists(), "deleted by the hourly pass"
    assert newer.exists() and kept.exists()
    saver.close()


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 192 KiB tmpfs, where root may mount one; skipped elsewhere."""
    mount_point = tmp_path / "card"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_disk_stops_snapshots_and_the_daemon_goes_on(tiny_disk, caplog):
    clock = FakeClock()
    saver = SnapshotSaver(tiny_disk / "snapshots", keep_days=0, max_bytes=1e9, clock=clock)
    log = EventLog(tiny_disk, clock=clock, snapshots=saver)
    names = []
    for i in range(12):  # ~60-100 KB each: the disk fills after two or three
        image = textured(seed=10 + i)
        saver.on_frame(frame_result(i, [face(track_id=i)], image=image))
        clock.advance(1)
        started = time.perf_counter()
        log.on_event(alarm(track_id=i, image=image))
        assert time.perf_counter() - started < 0.05
        assert saver.flush() and log.flush()
        names.append(log.recent(1)[0].get("snapshot"))

    errors = [
        r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and "snapshots" in r.getMessage()
    ]
    assert len(errors) == 1 and "No space left on device" in errors[0]
    assert saver.saved >= 1
    assert names[-1] is None, "once stopped, events no longer name a snapshot that will not exist"
    assert not list((tiny_disk / "snapshots").glob("*.tmp")), "no half-written files left behind"
    assert log.today() == {"without_mask": 12}, "every alarm is still counted"
    saver.close()
    log.close()


# -- face crops -------------------------------------------------------------------------------------------


def test_face_crops_once_per_person_capped_across_restarts(tmp_path):
    crops = tmp_path / "crops"
    collector = CropCollector(crops, limit=3, clock=FakeClock())
    image = textured(seed=7)
    for i in range(4):  # the same person on several frames: one crop
        collector.on_frame(frame_result(i, [face(track_id=1, decision="violation", score=0.93)], image=image))
    collector.on_frame(frame_result(5, [face(track_id=2, decision="pending")], image=image))  # undecided
    collector.on_frame(
        frame_result(6, [face(track_id=3, label="with_mask", decision="ok", score=0.81)], image=image)
    )
    assert collector.flush()
    collector.close()
    names = sorted(p.relative_to(crops).as_posix() for p in crops.rglob("*.jpg"))
    assert names == [
        "with_mask/20240501-080000_t3_with_mask_0.81.jpg",
        "without_mask/20240501-080000_t1_without_mask_0.93.jpg",
    ]
    crop = cv2.imread(str(crops / names[1]))
    assert crop.shape == (168, 140, 3), "the box (100x120) with a 20% margin on each side"

    again = CropCollector(crops, limit=3, clock=FakeClock(1_714_560_000.0))
    for i in range(5):
        again.on_frame(
            frame_result(i, [face(track_id=10 + i, decision="ok", label="with_mask")], image=image)
        )
    assert again.flush()
    again.close()
    assert len(list(crops.rglob("*.jpg"))) == 3


def test_a_half_written_face_crop_left_by_a_power_cut_is_deleted_at_start(tmp_path):
    clock = FakeClock()
    folder = tmp_path / "crops" / "without_mask"
    folder.mkdir(parents=True)
    cut, writing = folder / "20240501-075900_t2_without_mask_0.90.jpg.tmp", folder / "now.jpg.tmp"
    for path, age_s in ((cut, STALE_TMP_S + 1), (writing, 5)):
        path.write_bytes(b"half a jpeg")
        os.utime(path, (clock() - age_s,) * 2)
    CropCollector(tmp_path / "crops", limit=3, clock=clock).close()
    assert not cut.exists()
    assert writing.exists(), "a write in progress is left alone"


def test_days_are_local_dates(tmp_path):
    clock = FakeClock()
    log = EventLog(tmp_path, clock=clock)
    log.on_event(alarm())
    assert log.flush()
    days = json.loads((tmp_path / "counts.json").read_text())["days"]
    assert list(days) == [dt.date.fromtimestamp(clock()).isoformat()]
    log.close()
