"""The alarm pins the daemon drives, remembered in its state folder for `maskwatch check --outputs-off`.

systemd's ExecStopPost runs that command after a crash, a watchdog kill or SIGKILL, when the daemon had
no chance to switch its LEDs and buzzer off. config.yaml alone cannot say which pins those were: the
file may have been edited since the daemon started (a bad edit that SIGHUP rejected does not even load,
and new pins that were never reloaded name the wrong ones). So the daemon writes the alarm section it
runs with here each time its alarm starts, and the command switches off those pins as well as the
configured ones.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

from edge.config import AlarmConfig, ConfigError, parse_alarm_section

log = logging.getLogger(__name__)

FILE_NAME = "alarm-outputs.json"


def remember(alarm: AlarmConfig, state_dir: Path) -> None:
    """Best effort: a state folder that cannot be written costs this safety net, never the alarm."""
    path = Path(state_dir) / FILE_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(dataclasses.asdict(alarm)) + "\n")
        os.replace(temporary, path)
    except OSError as exc:
        log.warning(
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
