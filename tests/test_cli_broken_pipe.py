"""A reader that stops early (`maskwatch detect --json DIR | head -1`) ends the command quietly."""

from __future__ import annotations

import subprocess
import sys

from tests.daemon_scenes import COLOR_MODEL, REPO


def test_a_reader_that_goes_away_ends_the_command_without_a_traceback(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"classifier:\n  model: {COLOR_MODEL}\n")
    photo = REPO / "tests" / "data" / "with_mask_red.gif"
    child = subprocess.Popen(
        [sys.executable, "-m", "edge", "detect", "--json", "--config", str(config), str(photo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    child.stdout.close()  # gone before the first line: as `head` after the lines it wanted
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
