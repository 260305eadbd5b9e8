"""systemd/maskwatch.service: it verifies, its hardening scores <= 2.5, and the daemon survives that hardening.

`systemd-analyze verify` checks that a unit's executables exist, so it runs against a small root that
holds what setup.sh installs (the unit, the venv's `maskwatch`) and this machine's systemd units: the
same check a Pi makes, not a copy with ExecStart pointed elsewhere. The sandbox test runs the real demo
under the unit's own seccomp rules (tests/install/sandbox_exec.py), which is how MemoryDenyWriteExecute=
was decided: LiteRT's XNNPACK, numpy and OpenCV generate no code at run time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from install.system_tools import require_tool

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "maskwatch.service"
DROPIN = REPO / "systemd" / "maskwatch.service.d" / "10-no-gpio.conf"
SANDBOX = REPO / "tests" / "install" / "sandbox_exec.py"
EXPOSURE_LIMIT = 2.5


def settings(text: str) -> dict[str, list[str]]:
    """`Section.Key` -> every value given, in order (units repeat keys such as DeviceAllow=)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith(("#", ";")) and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(f"{section}.{key}", []).append(value)
    return found


def setup_sh_paths() -> dict[str, str]:
    """setup.sh's `readonly NAME=value` settings, with $NAME references resolved."""
    paths: dict[str, str] = {}
    for name, value in re.findall(r"^readonly (\w+)=([^(\s]\S*)$", (REPO / "setup.sh").read_text(), re.M):
        paths[name] = re.sub(r"\$(\w+)", lambda m: paths[m.group(1)], value)
    return paths


def verify_root(root: Path, unit_text: str) -> Path:
    """A root with the unit installed where setup.sh puts it, the programs it names, and systemd's units."""
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/maskwatch.service").write_text(unit_text)
    host_units = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir())
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    for values in settings(unit_text).items():
        if values[0].startswith("Service.Exec"):
            for command in values[1]:
                program = root / command.lstrip("-@:+!").split()[0].lstrip("/")
                program.parent.mkdir(parents=True, exist_ok=True)
                program.write_text("#!/bin/sh\n")
                program.chmod(0o755)
    return root


def verify(root: Path) -> subprocess.CompletedProcess:
    analyze = require_tool("systemd-analyze")
    return subprocess.run(
        [analyze, "verify", f"--root={root}", "maskwatch.service"], capture_output=True, text=True, timeout=60
    )


def test_unit_verifies_without_a_warning(tmp_path):
    result = verify(verify_root(tmp_path, UNIT.read_text()))
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr


def test_verify_would_catch_a_mistake(tmp_path):
    """The check above means something: a misspelt key or bad device rights are reported."""
    broken = (
        UNIT.read_text()
        .replace("ProtectHome=yes", "ProtectHom=yes")
        .replace("char-media rw", "char-media rwx")
    )
    output = verify(verify_root(tmp_path, broken)).stderr
    assert "Unknown key 'ProtectHom'" in output and "Invalid device rights 'rwx'" in output


def test_dropin_verifies_too(tmp_path):
    root = verify_root(tmp_path, UNIT.read_text())
    (root / "etc/systemd/system/maskwatch.service.d").mkdir()
    shutil.copy(DROPIN, root / "etc/systemd/system/maskwatch.service.d" / DROPIN.name)
    result = verify(root)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr


def exposure() -> tuple[float, str]:
    analyze = require_tool("systemd-analyze")
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for maskwatch\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1)), result.stdout


def test_exposure_is_at_most_2_5():
    level, report = exposure()
    assert level <= EXPOSURE_LIMIT, report


def test_what_the_issue_asks_of_the_unit():
    s = settings(UNIT.read_text())
    expected = {
        "Service.Type": ["notify"],
        "Service.Restart": ["on-failure"],
        "Service.ExecReload": ["/bin/kill -HUP $MAINPID"],
        "Service.User": ["maskwatch"],
        "Service.SupplementaryGroups": ["video gpio"],
        "Service.StateDirectory": ["maskwatch"],
        "Service.ConfigurationDirectory": ["maskwatch"],
        "Service.NoNewPrivileges": ["yes"],
        "Service.ProtectSystem": ["strict"],
        "Service.ProtectHome": ["yes"],
        "Service.PrivateTmp": ["yes"],
        "Service.CapabilityBoundingSet": [""],
        "Service.AmbientCapabilities": [""],
        "Service.DevicePolicy": ["closed"],
        "Service.SystemCallArchitectures": ["native"],
    }
    for key, value in expected.items():
        assert s.get(key) == value, key
    assert int(s["Service.WatchdogSec"][0]) > 0
    assert s["Unit.StartLimitIntervalSec"] and s["Unit.StartLimitBurst"]
    for key in ("KernelTunables", "KernelModules", "KernelLogs", "ControlGroups", "Clock", "Hostname"):
        assert s[f"Service.Protect{key}"] == ["yes"], key
    assert s["Service.SystemCallFilter"][0] == "@system-service"
    assert "PrivateDevices" not in {k.split(".")[1] for k in s}  # it would hide the camera and GPIO
    devices = {v.split()[0] for v in s["Service.DeviceAllow"]}
    assert {"char-video4linux", "char-media", "char-dma_heap", "char-gpiochip"} <= devices


def test_unit_and_setup_sh_agree_on_paths():
    paths, s = setup_sh_paths(), settings(UNIT.read_text())
    assert s["Service.ExecStart"][0].split()[0] == f"{paths['VENV_DIR']}/bin/maskwatch"
    assert f"--config {paths['CONFIG_FILE']}" in s["Service.ExecStart"][0]
    environment = dict(v.split("=", 1) for v in s["Service.Environment"])
    assert environment["MASKWATCH_MODELS_DIR"] == paths["MODELS_DIR"]
    assert environment["MASKWATCH_STATE_DIR"] == paths["STATE_DIR"]
    assert s["Service.WorkingDirectory"] == [paths["STATE_DIR"]]


def sandboxed(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """`command` under the unit's seccomp rules, run by Debian's python3 (it has libseccomp's bindings)."""
    require_tool("systemd-analyze")
    system_python = "/usr/bin/python3"
    probe = subprocess.run([system_python, "-c", "import seccomp"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run(["bash", str(REPO / "tests/install/deps.sh")], capture_output=True)
        if subprocess.run([system_python, "-c", "import seccomp"], capture_output=True).returncode != 0:
            pytest.skip("Debian's python3-seccomp is not installable here")
    return subprocess.run(
        [system_python, str(SANDBOX), str(UNIT), *command], capture_output=True, text=True, **kwargs
    )


def test_the_sandbox_emulation_really_restricts():
    code = (
        "import mmap, os, socket\n"
        "def refused(f):\n"
        "    try: f()\n"
        "    except OSError: return True\n"
        "    return False\n"
        "print(refused(lambda: mmap.mmap(-1, 4096, prot=7)),\n"  # read|write|exec
        "      refused(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)),\n"
        "      refused(lambda: os.setpriority(os.PRIO_PROCESS, 0, 5)),\n"
        "      refused(lambda: socket.socket(socket.AF_INET).close()))\n"
    )
    result = sandboxed([sys.executable, "-c", code])
    assert result.stdout.split() == ["True", "True", "True", "False"], result.stderr


@pytest.mark.slow
def test_demo_runs_under_the_units_syscall_filter_and_write_xor_execute_memory():
    if not (REPO / "models" / "mask_classifier.tflite").exists():
        pytest.skip("models/mask_classifier.tflite is not in the repository yet")
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONFAULTHANDLER": "1"}
    result = sandboxed([sys.executable, "-m", "edge", "run", "--demo"], env=env, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo finished" in result.stdout
    assert "XNNPACK" in result.stdout + result.stderr  # the delegate that would need a JIT if anything did
