"""The entrance's outputs: a red LED, a buzzer and an optional green "ok" LED, through gpiozero.

gpiozero is the hardware seam: `pin_factory=` (or `GPIOZERO_PIN_FACTORY=mock` for a whole program) swaps
the real pins for mock ones, so tests and `run --demo` drive this exact code. Each pattern says one thing:
fast and high for no mask, slow and low for a mask worn wrongly, a short flash every two seconds while
the camera is lost. Every output change is logged, so a mock run shows what the hardware would do, and
`close()` leaves every output off.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from gpiozero import LED, Buzzer, GPIOZeroError, TonalBuzzer

from edge.config import AlarmConfig

log = logging.getLogger(__name__)


class AlarmError(RuntimeError):
    """A GPIO output could not be set up; the message names the config key and the fix."""


@dataclass(frozen=True)
class Pattern:
    name: str
    on_s: float
    off_s: float
    tone: float = 0.0  # TonalBuzzer value: octaves above its mid tone (A4); 1.0 = A5


PATTERNS = {
    "without_mask": Pattern("no mask", on_s=0.1, off_s=0.1, tone=1.0),
    "mask_weared_incorrect": Pattern("mask worn wrongly", on_s=0.4, off_s=0.4, tone=0.0),
}
FAULT = Pattern("camera lost", on_s=0.1, off_s=1.9)

IDLE, FAULT_STATE = "idle", "fault"


def _tone_sequence(tone: float, cycles: int) -> Iterator[float | None]:
    for _ in range(cycles):
        yield tone
        yield None


def _use_pwm_mock_pins() -> None:
    """`GPIOZERO_PIN_FACTORY=mock` gives plain mock pins; a TonalBuzzer needs PWM ones (they work for LEDs too)."""
    if os.environ.get("GPIOZERO_PIN_FACTORY", "").lower() == "mock":
        os.environ.setdefault("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")


class Alarm:
    """Plays alarm patterns on the configured pins. A context manager; `close()` is idempotent."""

    def __init__(self, config: AlarmConfig | None = None, pin_factory=None):
        self.config = config or AlarmConfig()
        self._devices: dict[str, object] = {}
        self._pins: dict[str, str] = {}  # output name -> "GPIO17", for the log
        self._state = IDLE
        self._until = 0.0
        self._active: set[str] = set()  # outputs that are on or blinking, so only real changes are logged
        self._closed = False
        _use_pwm_mock_pins()
        try:
            self._open(pin_factory)
        except BaseException:
            self._close_devices()
            raise
        log.info("alarm outputs ready: %s", self.describe() or "none configured")

    def _open(self, pin_factory) -> None:
        c = self.config
        specs = [
            (
                "red LED",
                "alarm.led_pin",
                c.led_pin,
                lambda p: LED(p, active_high=c.active_high, pin_factory=pin_factory),
            ),
            ("buzzer", "alarm.buzzer_pin", c.buzzer_pin, self._buzzer_factory(pin_factory)),
            (
                "green LED",
                "alarm.ok_led_pin",
                c.ok_led_pin,
                lambda p: LED(p, active_high=c.active_high, pin_factory=pin_factory),
            ),
        ]
        for name, key, pin, make in specs:
            if pin is None:
                continue
            try:
                self._devices[name] = make(pin)
                self._pins[name] = f"GPIO{pin}"
            except (GPIOZeroError, OSError, ValueError) as exc:
                raise AlarmError(
                    f"{key}: cannot drive GPIO{pin} ({type(exc).__name__}: {exc}); on a machine without GPIO "
                    "set GPIOZERO_PIN_FACTORY=mock, or set the alarm pins to null"
                ) from exc

    def _buzzer_factory(self, pin_factory):
        if self.config.buzzer_type == "tonal":
            return lambda p: TonalBuzzer(p, pin_factory=pin_factory)
        return lambda p: Buzzer(p, active_high=self.config.active_high, pin_factory=pin_factory)

    def __enter__(self) -> Alarm:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        return ", ".join(f"{name} {self._pins[name]}" for name in self._devices)

    @property
    def state(self) -> str:
        """ "idle", "fault", or the name of the alarm pattern playing now."""
        if self._state not in (IDLE, FAULT_STATE) and time.monotonic() >= self._until:
            self._state = IDLE
        return self._state

    @property
    def is_sounding(self) -> bool:
        return self.state not in (IDLE, FAULT_STATE)

    def wait_until_quiet(self, timeout: float | None = None) -> None:
        """Block until the playing alarm pattern has finished (a finite source ended mid-alarm)."""
        remaining = self._until - time.monotonic()
        if self.is_sounding and remaining > 0:
            time.sleep(remaining if timeout is None else min(remaining, timeout))

    def alert(self, label: str) -> None:
        """Play the pattern for `label` ("without_mask" or "mask_weared_incorrect") for duration_s."""
        pattern = PATTERNS.get(label, PATTERNS["without_mask"])
        cycles = max(1, round(self.config.duration_s / (pattern.on_s + pattern.off_s)))
        self._show_ok(False)
        self._blink("red LED", pattern, cycles)
        self._sound(pattern, cycles)
        self._state, self._until = pattern.name, time.monotonic() + cycles * (pattern.on_s + pattern.off_s)

    def fault(self) -> None:
        """The camera is lost: a short red flash every two seconds, no sound, until `clear_fault()`."""
        if self._state == FAULT_STATE:
            return
        self._silence()
        self._show_ok(False)
        self._blink("red LED", FAULT, None)
        self._state = FAULT_STATE

    def clear_fault(self) -> None:
        if self._state != FAULT_STATE:
            return
        self._switch("red LED", False)
        self._state = IDLE

    def show_ok(self, on: bool) -> None:
        """The green LED: on while the people in view are decided masked and nothing is alarming."""
        if on and self.is_sounding:
            on = False
        self._show_ok(on)

    def off(self) -> None:
        """Every output off now."""
        self._silence()
        self._switch("red LED", False)
        self._show_ok(False)
        self._state = IDLE

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.off()
        finally:
            states = ", ".join(
                f"{name} {self._pins[name]}={'on' if d.value else 'off'}" for name, d in self._devices.items()
            )
            self._close_devices()
            log.info("alarm outputs off and released: %s", states or "none configured")

    def _close_devices(self) -> None:
        for device in self._devices.values():
            device.close()
        self._devices.clear()

    def _blink(self, name: str, pattern: Pattern, cycles: int | None) -> None:
        device = self._devices.get(name)
        if device is None:
            return
        device.blink(on_time=pattern.on_s, off_time=pattern.off_s, n=cycles, background=True)
        self._active.add(name)
        log.info(
            "output %s %s: blink %.1f s on / %.1f s off %s (%s)",
            name,
            self._pins[name],
            pattern.on_s,
            pattern.off_s,
            f"x{cycles}" if cycles else "until cleared",
            pattern.name,
        )

    def _sound(self, pattern: Pattern, cycles: int) -> None:
        buzzer = self._devices.get("buzzer")
        if buzzer is None:
            return
        self._active.add("buzzer")
        if isinstance(buzzer, TonalBuzzer):
            buzzer.source_delay = pattern.on_s  # on and off are equal in the alarm patterns
            buzzer.source = _tone_sequence(pattern.tone, cycles)
            log.info(
                "output buzzer %s: tone %s, %.1f s on / %.1f s off x%d (%s)",
                self._pins["buzzer"],
                buzzer.mid_tone.up(round(12 * pattern.tone)).note,
                pattern.on_s,
                pattern.off_s,
                cycles,
                pattern.name,
            )
        else:
            buzzer.beep(on_time=pattern.on_s, off_time=pattern.off_s, n=cycles, background=True)
            log.info(
                "output buzzer %s: beep %.1f s on / %.1f s off x%d (%s)",
                self._pins["buzzer"],
                pattern.on_s,
                pattern.off_s,
                cycles,
                pattern.name,
            )

    def _silence(self) -> None:
        buzzer = self._devices.get("buzzer")
        if buzzer is None or "buzzer" not in self._active:
            return
        self._active.discard("buzzer")
        if isinstance(buzzer, TonalBuzzer):
            buzzer.source = None
            buzzer.stop()
        else:
            buzzer.off()
        log.info("output buzzer %s: off", self._pins["buzzer"])

    def _switch(self, name: str, on: bool) -> None:
        device = self._devices.get(name)
        if device is None or on == (name in self._active):
            return
        if on:
            device.on()
            self._active.add(name)
        else:
            device.off()
            self._active.discard(name)
        log.info("output %s %s: %s", name, self._pins[name], "on" if on else "off")

    def _show_ok(self, on: bool) -> None:
        self._switch("green LED", on)
