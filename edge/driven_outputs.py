"""The alarm pins the daemon drives, remembered in its state folder for `maskwatch check --outputs-off`.

systemd's ExecStopPost runs that command after a crash, a watchdog kill or SIGKILL, when the daemon had
no chance to switch its LEDs and buzzer off. config.yaml alone cannot say which pins those were: the
file may have been edited since the daemon started (a bad edit that SIGHUP rejected does not even load,
and new pins that were never reloaded name the wrong ones). So the daemon writes the alarm section it
runs with here each time its alarm starts, and the command switches off those pins as well as the
configured ones.

It writes a copy into the default state folder too ($MASKWATCH_STATE_DIR, which the unit sets, or
/var/lib/maskwatch). `events.state_dir` is itself part of config.yaml: after a reload that moved it and
a later edit that moved it again or broke the events section, the configured folder is not where the
daemon wrote, but the default one still holds its latest pins.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from edge.atomic_files import write_atomic
from edge.config import AlarmConfig, ConfigError, parse_alarm_section

log = logging.getLogger(__name__)

FILE_NAME = "alarm-outputs.json"


def remember(alarm: AlarmConfig, state_dir: Path, *, warn: bool = True) -> None:
    """Best effort: a state folder that cannot be written costs this safety net, never the alarm."""
    path = Path(state_dir) / FILE_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(dataclasses.asdict(alarm)) + "\n").encode())
    except OSError as exc:
        (log.warning if warn else log.debug)(
            "cannot remember the alarm pins in %s (%s): after a crash, only config.yaml's are switched off",
            path,
            exc,
        )


def recall(state_dir: Path) -> AlarmConfig | None:
    """The alarm section the daemon last ran with, or None when there is none (or it cannot be read)."""
    path = Path(state_dir) / FILE_NAME
    try:
        return parse_alarm_section(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ConfigError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None


def remember_with_default_copy(alarm: AlarmConfig, state_dir: Path, default_dir: Path) -> None:
    """`remember` in the configured folder, and in the default one when that is another folder: the
    copy is the fallback `check --outputs-off` always reads. Failing to write the copy is only a debug
    line, since a developer's run without /var/lib/maskwatch would otherwise warn on every start."""
    remember(alarm, state_dir)
    if Path(default_dir).resolve() != Path(state_dir).resolve():
        remember(alarm, default_dir, warn=False)
