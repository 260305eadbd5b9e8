"""The alarm pins the daemon drove, kept for `maskwatch check --outputs-off` after a crash."""

from __future__ import annotations

from edge.config import AlarmConfig
from edge.driven_outputs import FILE_NAME, recall, remember


def test_what_is_remembered_is_recalled(tmp_path):
    alarm = AlarmConfig(led_pin=5, buzzer_pin=6, buzzer_type="tonal", active_high=False)
    remember(alarm, tmp_path / "state")
    assert recall(tmp_path / "state") == alarm


def test_nothing_remembered_or_a_damaged_file_recalls_nothing(tmp_path, caplog):
    assert recall(tmp_path) is None
    (tmp_path / FILE_NAME).write_text('{"led_pin": 99}')
    assert recall(tmp_path) is None
    assert "alarm.led_pin: 99 is out of range" in caplog.text


def test_a_state_folder_that_cannot_be_written_is_a_warning_not_an_error(tmp_path, caplog):
    (tmp_path / "file").write_text("")
    remember(AlarmConfig(), tmp_path / "file")  # a file where the folder should be
    assert "cannot remember the alarm pins" in caplog.text
