"""The alarm on gpiozero mock pins: what each pin did, and when."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockPWMPin

from edge.alarm import Alarm, AlarmError
from edge.config import AlarmConfig

RED, BUZZER, GREEN = 17, 18, 27


def make_alarm(pins, **overrides) -> Alarm:
    config = AlarmConfig(led_pin=RED, buzzer_pin=BUZZER, ok_led_pin=GREEN, **overrides)
    return Alarm(config, pin_factory=pins)


def test_no_mask_blinks_led_and_beeps_fast_for_duration(pins):
    with make_alarm(pins, duration_s=0.4) as alarm:
        alarm.alert("without_mask")
        assert alarm.state == "no mask" and alarm.is_sounding
        time.sleep(0.55)
        assert alarm.state == "idle"
        expected = [(0, False), (0, True), (0.1, False), (0.1, True), (0.1, False)]
        pins.pin(RED).assert_states_and_times(expected)
        pins.pin(BUZZER).assert_states_and_times(expected)
        assert len(pins.pin(RED).states) == 5


def test_worn_wrong_mask_has_a_slower_pattern(pins):
    with make_alarm(pins, duration_s=0.8) as alarm:
        alarm.alert("mask_weared_incorrect")
        assert alarm.state == "mask worn wrongly"
        time.sleep(0.9)
        expected = [(0, False), (0, True), (0.4, False)]
        pins.pin(RED).assert_states_and_times(expected)
        pins.pin(BUZZER).assert_states_and_times(expected)


def _tones_while_playing(pins, alarm, label, seconds) -> set[float]:
    frequencies, done = set(), threading.Event()

    def sample():
        while not done.is_set():
            pin = pins.pin(BUZZER)
            if pin.state:
                frequencies.add(round(pin.frequency))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    alarm.alert(label)
    time.sleep(seconds)
    done.set()
    sampler.join()
    return frequencies


def test_tonal_buzzer_plays_a_high_tone_for_no_mask_and_a_low_one_for_worn_wrong(pins):
    pins.pin_class = MockPWMPin
    with make_alarm(pins, buzzer_type="tonal", duration_s=0.4) as alarm:
        assert _tones_while_playing(pins, alarm, "without_mask", 0.45) == {880}
        assert _tones_while_playing(pins, alarm, "mask_weared_incorrect", 0.45) == {440}
        time.sleep(0.5)
        assert not pins.pin(BUZZER).state


def test_fault_flashes_red_without_sound_until_cleared(pins):
    with make_alarm(pins) as alarm:
        alarm.show_ok(True)
        alarm.fault()
        assert alarm.state == "fault" and not alarm.is_sounding
        time.sleep(0.15)
        alarm.clear_fault()
        assert alarm.state == "idle"
        pins.pin(RED).assert_states_and_times([(0, False), (0, True), (0.1, False)])
        assert [s.state for s in pins.pin(BUZZER).states] == [False]
        assert not pins.pin(GREEN).state


def test_green_led_shows_ok_but_never_while_alarming(pins):
    with make_alarm(pins, duration_s=0.4) as alarm:
        alarm.show_ok(True)
        assert pins.pin(GREEN).state
        alarm.alert("without_mask")
        assert not pins.pin(GREEN).state
        alarm.show_ok(True)
        assert not pins.pin(GREEN).state
        time.sleep(0.45)
        alarm.show_ok(True)
        assert pins.pin(GREEN).state


def test_close_turns_every_output_off_even_mid_pattern_and_is_idempotent(pins):
    alarm = make_alarm(pins, duration_s=5.0)
    alarm.show_ok(True)
    alarm.alert("without_mask")
    time.sleep(0.05)
    alarm.close()
    alarm.close()
    for pin in (RED, BUZZER, GREEN):
        assert not pins.pin(pin).state, f"GPIO{pin} left on"
        assert pins.pin(pin).function == "input", f"GPIO{pin} not released"
    time.sleep(0.25)  # no blink thread may switch anything back on
    assert not pins.pin(RED).state and not pins.pin(BUZZER).state


def test_active_low_outputs_are_high_when_off(pins):
    with make_alarm(pins, active_high=False, duration_s=0.4) as alarm:
        assert pins.pin(RED).state and pins.pin(BUZZER).state
        alarm.alert("without_mask")
        time.sleep(0.05)
        assert not pins.pin(RED).state
    assert pins.pin(RED).state and pins.pin(BUZZER).state


def test_no_pins_configured_means_no_outputs_and_no_errors(pins):
    with Alarm(AlarmConfig(led_pin=None, buzzer_pin=None), pin_factory=pins) as alarm:
        alarm.alert("without_mask")
        alarm.fault()
        alarm.show_ok(True)
        assert alarm.describe() == ""


def test_a_pin_in_use_is_an_error_naming_the_config_key(pins):
    with LED(RED, pin_factory=pins), pytest.raises(AlarmError, match=r"alarm\.led_pin: cannot drive GPIO17"):
        make_alarm(pins)
    # Nothing half-built stays reserved: the buzzer pin is free again.
    with LED(BUZZER, pin_factory=pins):
        pass


def test_every_output_change_is_logged(pins, caplog):
    caplog.set_level(logging.INFO, logger="edge.alarm")
    with make_alarm(pins, duration_s=0.4) as alarm:
        alarm.show_ok(True)
        alarm.alert("without_mask")
        alarm.show_ok(True)  # no change while sounding: not logged twice
    lines = [r.getMessage() for r in caplog.records]
    assert "output green LED GPIO27: on" in lines
    assert "output green LED GPIO27: off" in lines
    assert any(line.startswith("output red LED GPIO17: blink 0.1 s on / 0.1 s off x2") for line in lines)
    assert any(line.startswith("output buzzer GPIO18: beep 0.1 s on / 0.1 s off x2") for line in lines)
    assert (
        lines[-1]
        == "alarm outputs off and released: red LED GPIO17=off, buzzer GPIO18=off, green LED GPIO27=off"
    )
    assert sum(line == "output green LED GPIO27: on" for line in lines) == 1
