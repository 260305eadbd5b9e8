"""`maskwatch bench` measures the real loop: a short run with the colour test model gives a sane table."""

from __future__ import annotations

from daemon_scenes import COLOR_MODEL

from edge.commands import bench


def test_bench_frames_hold_one_and_six_detectable_faces():
    from edge.faces import FaceDetector

    detector = FaceDetector()
    assert len(detector.detect(bench.bench_frame(1))) == 1
    assert len(detector.detect(bench.bench_frame(6))) == 6


def test_measure_runs_the_loop_and_reports_every_stage():
    row = bench.measure(faces=1, threads=1, frames=5, classifier_path=COLOR_MODEL, warmup=1)
    assert row.frames == 5 and row.fps > 0 and row.cpu_ms > 0
    assert set(row.ms) == set(bench.STAGES)
    assert row.ms["total"] >= row.ms["detect"] > 0 and row.ms["classify"] > 0
    table = bench.table([row], {"start_to_first_result_s": 0.5})
    assert "faces threads   fps" in table and "start to first result s: 0.50" in table
    assert row.case == "steady" and "steady" in table


def test_the_worst_case_searches_every_frame_in_full_and_classifies_every_face():
    from edge.config import Config

    worst = bench.worst_case(Config())
    assert worst.detector.fine_every == 1 and worst.decision.reclassify_every == 1
    assert worst.detector.fine_size == Config().detector.fine_size  # nothing else changes
