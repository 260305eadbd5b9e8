"""The alarm pins the daemon drove, kept for `maskwatch check --outputs-off` after a crash."""

from __future__ import annotations

from edge.config import AlarmConfig
from edge.driven_outputs import FILE_NAME, recall, remember, remember_with_default_copy


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


def test_the_pins_are_copied_to_the_default_folder_which_check_always_reads(tmp_path):
    alarm = AlarmConfig(led_pin=5, buzzer_pin=6)
    remember_with_default_copy(alarm, tmp_path / "configured", tmp_path / "default")
    assert recall(tmp_path / "configured") == alarm
    assert recall(tmp_path / "default") == alarm


def test_a_default_folder_that_cannot_be_written_costs_no_warning(tmp_path, caplog):
    (tmp_path / "file").write_text("")
    remember_with_default_copy(AlarmConfig(), tmp_path / "configured", tmp_path / "file")
    assert recall(tmp_path / "configured") == AlarmConfig()
    assert "cannot remember" not in caplog.text


def test_the_pins_reach_the_card_before_a_power_cut_can_empty_the_file(tmp_path, disk_calls):
    """A power cut right after the daemon started must not leave an empty or truncated record: the data is
    fsynced before the rename into place, and the folder after it (the shared atomic writer)."""
    alarm = AlarmConfig(led_pin=5, buzzer_pin=6)
    remember(alarm, tmp_path)
    path = tmp_path / FILE_NAME
    temporary = path.with_name(FILE_NAME + ".tmp")
    assert disk_calls == [
        ("fsync", temporary, path.read_bytes()),
        ("replace", temporary, path),
        ("fsync", tmp_path, None),
    ]
    assert recall(tmp_path) == alarm
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME], "no temporary file is left"
