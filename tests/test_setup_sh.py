"""setup.sh, run for real against a temporary root with stand-ins for the commands that change a system.

Each test gets a machine: a root folder with the few /etc files setup.sh reads, and a source tree holding
the real setup.sh and systemd/ next to a small stand-in package. tests/install/fake_tool.py plays
apt-get, dpkg-query, useradd & co, systemctl, python3 (and the venv it makes) and records every call,
so the tests assert on what setup.sh did to the files and on which commands it ran. The real install
into a debootstrapped Debian lives in tests/install/test_debootstrap_install.py.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from install.system_tools import require_tool

REPO = Path(__file__).resolve().parent.parent
FAKE_TOOL = REPO / "tests" / "install" / "fake_tool.py"
REPLACED = {
    "SYSTEMCTL": "systemctl",
    "APT_GET": "apt-get",
    "DPKG_QUERY": "dpkg-query",
    "USERADD": "useradd",
    "USERMOD": "usermod",
    "USERDEL": "userdel",
    "GROUPADD": "groupadd",
    "PYTHON": "python3",
    "RUNAS": "runas",
}
# Calls that only look: everything else the fake tool records changes the machine.
PROBES = {("systemctl", "is-enabled"), ("systemctl", "is-active"), ("python3", "-c"), ("venv-python", "-c")}
PI_PACKAGES = ["python3-picamera2", "python3-gpiozero", "python3-lgpio"]
COMMON_PACKAGES = ["python3-venv", "python3-numpy", "python3-opencv", "python3-yaml", "procps"]
DEFAULT_CONFIG = "camera:\n  source: picamera2\nalarm:\n  led_pin: 17\n"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="a real setup.sh run chowns files: run as root (CI does)"
)


@dataclass
class Machine:
    """A target root plus the repository copy setup.sh runs from."""

    root: Path
    src: Path
    log: Path
    env: dict = field(default_factory=dict)

    def setup(self, *args: str, expect_rc: int = 0) -> str:
        self.log.write_text("")
        result = subprocess.run(
            ["bash", str(self.src / "setup.sh"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = result.stdout + result.stderr
        assert result.returncode == expect_rc, output
        return output

    def calls(self, tool: str | None = None) -> list[list[str]]:
        rows = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [[r["tool"], *r["args"]] for r in rows if tool is None or r["tool"] == tool]

    def changes(self) -> list[list[str]]:
        return [c for c in self.calls() if (c[0], c[1]) not in PROBES and c[0] != "dpkg-query"]

    def path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def make_pi(self, model: str = "Raspberry Pi 4 Model B Rev 1.5") -> None:
        self.path("/proc/device-tree").mkdir(parents=True, exist_ok=True)
        self.path("/proc/device-tree/model").write_bytes(model.encode() + b"\0")
        self.env["MASKWATCH_ARCH"] = "aarch64"

    def ids(self, user: str) -> tuple[int, int]:
        for line in self.path("/etc/passwd").read_text().splitlines():
            name, _, uid, gid, *_ = line.split(":")
            if name == user:
                return int(uid), int(gid)
        raise KeyError(user)

    def group_members(self, group: str) -> list[str]:
        for line in self.path("/etc/group").read_text().splitlines():
            name, _, _, members = line.split(":")
            if name == group:
                return [m for m in members.split(",") if m]
        raise KeyError(group)

    def files(self) -> set[str]:
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*")}


def make_source_tree(src: Path) -> None:
    """The real setup.sh and unit next to a stand-in package, config and model."""
    shutil.copy2(REPO / "setup.sh", src / "setup.sh")
    shutil.copytree(REPO / "systemd", src / "systemd")
    (src / "edge").mkdir()
    (src / "edge" / "__init__.py").write_text('__version__ = "0.1.0"\n')
    (src / "pyproject.toml").write_text('[project]\nname = "maskwatch"\nversion = "0.1.0"\n')
    (src / "requirements").mkdir()
    (src / "requirements" / "pi.txt").write_text("ai-edge-litert==2.3.0\n")
    (src / "constraints").mkdir()
    (src / "constraints" / "pi.txt").write_text("numpy<2\n")
    (src / "config.yaml").write_text(DEFAULT_CONFIG)
    (src / "models").mkdir()
    (src / "models" / "mask_classifier.tflite").write_bytes(b"classifier")
    (src / "models" / "mask_classifier.json").write_text("{}\n")


def make_root(root: Path, *, systemd_running: bool = True) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    # Debian's base-passwd has video (44) but no gpio group; Raspberry Pi OS has both.
    (root / "etc" / "group").write_text("root:x:0:\nvideo:x:44:\n")
    if systemd_running:
        (root / "run" / "systemd" / "system").mkdir(parents=True)


def build_machine(base: Path) -> Machine:
    root, src = base / "root", base / "src"
    src.mkdir()
    make_source_tree(src)
    make_root(root)
    log = base / "calls.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MASKWATCH_", "FAKE_", "GPIOZERO_"))}
    env |= {
        "MASKWATCH_ROOT": str(root),
        "FAKE_ROOT": str(root),
        "FAKE_LOG": str(log),
        "MASKWATCH_ARCH": "x86_64",
    }
    for var, tool in REPLACED.items():
        env[f"MASKWATCH_{var}"] = f"{FAKE_TOOL} {tool}"
    return Machine(root=root, src=src, log=log, env=env)


@pytest.fixture
def machine(tmp_path) -> Machine:
    return build_machine(tmp_path)


def apt_install(m: Machine) -> list[str]:
    (call,) = [c for c in m.calls("apt-get") if "install" in c]
    return call[call.index("--no-install-recommends") + 1 :]


# --- lint -------------------------------------------------------------------------------------------


def test_shellcheck_is_clean():
    shellcheck = require_tool("shellcheck")
    scripts = [REPO / "setup.sh", *sorted((REPO / "tests" / "install").glob("*.sh"))]
    result = subprocess.run(
        [shellcheck, "--severity=style", *map(str, scripts)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


# --- dry run ----------------------------------------------------------------------------------------


def test_dry_run_on_a_pi_prints_every_action_and_changes_nothing(machine):
    machine.make_pi()
    before = machine.files()
    out = machine.setup("--dry-run")
    assert machine.files() == before
    assert machine.changes() == []
    assert "board: Raspberry Pi 4 Model B Rev 1.5" in out
    assert f"install -y -q --no-install-recommends {' '.join(COMMON_PACKAGES + PI_PACKAGES)}" in out
    for action in [
        "groupadd --system gpio",
        "useradd --system --user-group --no-create-home --home-dir /var/lib/maskwatch",
        "--groups video,gpio maskwatch",
        "-m venv --system-site-packages",
        "/requirements/pi.txt -c",
        "-m edge.fetch_detector --target",
        "-m edge.fetch_demo_image --target",
        "/etc/maskwatch/config.yaml",
        "/etc/systemd/system/maskwatch.service",
        "systemctl enable maskwatch",
        "maskwatch check --config",
        "systemctl restart maskwatch",
    ]:
        assert action in out, action
    assert "10-no-gpio.conf" not in out
    assert "journalctl -u maskwatch -f" in out


def test_dry_run_on_plain_debian_skips_the_pi_packages_and_says_so(machine):
    out = machine.setup("--dry-run")
    assert machine.changes() == []
    assert "board: not a Raspberry Pi" in out
    assert f"--no-install-recommends {' '.join(COMMON_PACKAGES)}\n" in out
    assert f"skipped (Raspberry Pi only): {' '.join(PI_PACKAGES)}" in out
    assert "10-no-gpio.conf" in out  # mock GPIO for the service
    assert "GPIOZERO_PIN_FACTORY=mock" in out  # and for the self-test


def test_dry_run_does_not_need_root_or_stand_ins():
    """An ordinary user with the real system tools: `nobody` when the suite itself runs as root (CI)."""
    base = Path(tempfile.mkdtemp(prefix="maskwatch-setup-"))  # pytest's tmp_path is root-only under root
    try:
        os.chmod(base, 0o755)
        machine = build_machine(base)
        machine.log.write_text("")
        machine.log.chmod(0o666)
        for var in REPLACED:
            del machine.env[f"MASKWATCH_{var}"]
        # keep the package list independent of this host
        machine.env["MASKWATCH_DPKG_QUERY"] = f"{FAKE_TOOL} dpkg-query"
        command = ["bash", str(machine.src / "setup.sh"), "--dry-run"]
        if os.geteuid() == 0:
            require_tool("setpriv")
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        result = subprocess.run(command, env=machine.env, capture_output=True, text=True, timeout=120)
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert "not root: fine for --dry-run, but the real run needs sudo" in out
        assert "apt-get install -y -q" in out
    finally:
        shutil.rmtree(base)


# --- preflight --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MASKWATCH_ARCH": "armv7l"}, "ships no 32-bit wheels"),
        ({"FAKE_PYTHON_VERSION": "3.11 32"}, "needs a 64-bit userland"),
        ({"FAKE_PYTHON_VERSION": "3.9 64"}, "Python 3.9 is too old"),
    ],
)
def test_preflight_refuses_with_the_reason(machine, change, message):
    machine.env |= change
    out = machine.setup("--dry-run", expect_rc=1)
    assert message in out
    assert machine.changes() == []


def test_preflight_refuses_bullseye(machine):
    machine.path("/etc/os-release").write_text('ID=debian\nVERSION_ID="11"\nVERSION_CODENAME=bullseye\n')
    assert "needs Bookworm (12) or newer" in machine.setup("--dry-run", expect_rc=1)


def test_trixie_and_raspberry_pi_os_are_accepted(machine):
    machine.path("/etc/os-release").write_text('ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n')
    machine.setup("--dry-run")
    machine.path("/etc/os-release").write_text("ID=raspbian\nID_LIKE=debian\nVERSION_CODENAME=trixie\n")
    machine.setup("--dry-run")


def test_root_prefix_with_real_tools_is_refused(machine):
    del machine.env["MASKWATCH_SYSTEMCTL"]
    assert "needs MASKWATCH_SYSTEMCTL set to a stand-in" in machine.setup(expect_rc=1)


# --- real runs --------------------------------------------------------------------------------------


@needs_root
def test_install_on_a_pi(machine):
    machine.make_pi()
    out = machine.setup()

    assert apt_install(machine) == COMMON_PACKAGES + PI_PACKAGES
    uid, gid = machine.ids("maskwatch")
    assert machine.group_members("video") == ["maskwatch"]
    assert machine.group_members("gpio") == ["maskwatch"]

    venv = machine.path("/opt/maskwatch/venv")
    pip = [c[1:] for c in machine.calls("venv-python") if c[1:3] == ["-m", "pip"]]
    code = str(machine.path("/opt/maskwatch/src"))
    assert ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", f"{code}/requirements/pi.txt",
            "-c", f"{code}/constraints/pi.txt"] in pip  # fmt: skip
    assert pip[-1][-1] == code and "--no-deps" in pip[-1]
    assert (venv / "bin" / "maskwatch").exists()
    assert (machine.path("/opt/maskwatch/src/edge/__init__.py")).exists()

    models = machine.path("/opt/maskwatch/models")
    assert (models / "mask_classifier.tflite").read_bytes() == b"classifier"
    assert (models / "mask_classifier.json").exists()
    assert (models / "detector" / "face_detection_short_range.tflite").exists()
    assert (models / "demo" / "astronaut.png").exists()

    command = machine.path("/usr/local/bin/maskwatch")
    assert "MASKWATCH_MODELS_DIR:-/opt/maskwatch/models" in command.read_text()
    assert os.access(command, os.X_OK)

    config = machine.path("/etc/maskwatch/config.yaml")
    assert config.read_text() == DEFAULT_CONFIG
    assert stat.S_IMODE(config.stat().st_mode) == 0o640 and config.stat().st_gid == gid
    state = machine.path("/var/lib/maskwatch")
    assert (state.stat().st_uid, state.stat().st_gid, stat.S_IMODE(state.stat().st_mode)) == (uid, gid, 0o750)

    unit = machine.path("/etc/systemd/system/maskwatch.service")
    assert unit.read_text() == (REPO / "systemd" / "maskwatch.service").read_text()
    assert not machine.path("/etc/systemd/system/maskwatch.service.d/10-no-gpio.conf").exists()
    assert machine.path("/etc/systemd/system/multi-user.target.wants/maskwatch.service").is_symlink()

    systemctl = [c[1:] for c in machine.calls("systemctl") if c[1] not in ("is-enabled", "is-active")]
    assert systemctl == [["daemon-reload"], ["enable", "maskwatch"], ["restart", "maskwatch"]]
    (check,) = machine.calls("maskwatch")
    assert check[1:] == ["check", "--config", str(config)]
    (runas,) = machine.calls("runas")
    assert "GPIOZERO_PIN_FACTORY=mock" not in runas  # a Pi blinks its real alarm
    # lgpio's pipe goes where the service user may write, not into the folder setup.sh was started in
    assert f"LG_WD={machine.path('/var/lib/maskwatch')}" in runas
    assert out.rstrip().endswith("logs:    journalctl -u maskwatch -f")


@needs_root
def test_plain_debian_gets_the_gpio_group_and_mock_pins(machine):
    machine.setup()
    assert apt_install(machine) == COMMON_PACKAGES
    assert ["groupadd", "--system", "gpio"] in machine.calls()
    dropin = machine.path("/etc/systemd/system/maskwatch.service.d/10-no-gpio.conf")
    assert "Environment=GPIOZERO_PIN_FACTORY=mock" in dropin.read_text()
    (runas,) = machine.calls("runas")
    assert "GPIOZERO_PIN_FACTORY=mock" in runas


@needs_root
def test_second_run_changes_nothing_and_does_not_restart(machine):
    machine.make_pi()
    machine.setup()
    out = machine.setup()
    assert "Done: nothing changed" in out
    assert machine.changes() == [
        [
            "venv-python",
            "-m",
            "edge.fetch_detector",
            "--target",
            str(machine.path("/opt/maskwatch/models/detector")),
        ],
        [
            "venv-python",
            "-m",
            "edge.fetch_demo_image",
            "--target",
            str(machine.path("/opt/maskwatch/models/demo")),
        ],
        *machine.calls("runas"),
        *machine.calls("maskwatch"),
    ]
    # The daemon holds the camera and pins: only config and models are checked while it runs.
    assert machine.calls("maskwatch")[0][-2:] == ["--skip-camera", "--skip-alarm"]
    assert "not restarted" in out


@needs_root
def test_edited_config_survives_and_the_new_default_goes_beside_it(machine):
    machine.make_pi()
    machine.setup()
    config = machine.path("/etc/maskwatch/config.yaml")
    edited = DEFAULT_CONFIG.replace("led_pin: 17", "led_pin: 27")
    config.write_text(edited)
    (machine.src / "config.yaml").write_text(DEFAULT_CONFIG + "decision:\n  cooldown_s: 10\n")

    out = machine.setup()
    assert config.read_text() == edited
    assert (
        machine.path("/etc/maskwatch/config.yaml.new").read_text()
        == (machine.src / "config.yaml").read_text()
    )
    assert "was edited: kept as it is" in out
    assert "-  led_pin: 27\n+  led_pin: 17\n" in out  # the difference is printed
    assert "+decision:\n+  cooldown_s: 10\n" in out
    assert "restart" not in [c[1] for c in machine.calls("systemctl")]  # the running config did not change


@needs_root
def test_unedited_config_follows_the_new_default(machine):
    machine.setup()
    new_default = DEFAULT_CONFIG + "decision:\n  cooldown_s: 10\n"
    (machine.src / "config.yaml").write_text(new_default)
    machine.setup()
    assert machine.path("/etc/maskwatch/config.yaml").read_text() == new_default
    assert not machine.path("/etc/maskwatch/config.yaml.new").exists()


@needs_root
def test_changed_code_is_reinstalled_and_the_service_restarted(machine):
    machine.make_pi()
    machine.setup()
    (machine.src / "edge" / "__init__.py").write_text('__version__ = "0.1.1"\n')
    machine.setup()
    pip = [c for c in machine.calls("venv-python") if c[1:3] == ["-m", "pip"]]
    assert len(pip) == 1 and "--no-deps" in pip[0]  # the package, not the requirements again
    assert machine.path("/opt/maskwatch/src/edge/__init__.py").read_text() == '__version__ = "0.1.1"\n'
    assert [c[1:] for c in machine.calls("systemctl") if c[1] in ("stop", "restart")] == [
        ["stop", "maskwatch"],
        ["restart", "maskwatch"],
    ]


@needs_root
def test_changed_unit_is_reloaded(machine):
    machine.make_pi()
    machine.setup()
    with (machine.src / "systemd" / "maskwatch.service").open("a") as f:
        f.write("# local comment\n")
    machine.setup()
    verbs = [c[1] for c in machine.calls("systemctl")]
    assert "daemon-reload" in verbs and "restart" in verbs


@needs_root
def test_no_start_enables_but_does_not_start(machine):
    machine.make_pi()
    out = machine.setup("--no-start")
    verbs = [c[1] for c in machine.calls("systemctl")]
    assert "enable" in verbs and "restart" not in verbs and "start" not in verbs
    assert "not started (--no-start)" in out


@needs_root
def test_failed_self_test_leaves_the_service_stopped_and_fails(machine):
    machine.make_pi()
    machine.env["FAKE_CHECK_RC"] = "1"
    out = machine.setup(expect_rc=1)
    assert "the self-test failed" in out
    assert "restart" not in [c[1] for c in machine.calls("systemctl")]
    assert machine.path("/etc/systemd/system/multi-user.target.wants/maskwatch.service").is_symlink()


@needs_root
def test_failed_self_test_after_an_upgrade_starts_the_alarm_again(machine):
    machine.make_pi()
    machine.setup()
    (machine.src / "edge" / "__init__.py").write_text('__version__ = "0.1.1"\n')
    machine.env["FAKE_CHECK_RC"] = "1"
    out = machine.setup(expect_rc=1)
    assert "maskwatch was running before, so it is started again" in out
    assert [c[1] for c in machine.calls("systemctl") if c[1] in ("stop", "restart")] == ["stop", "restart"]


@needs_root
def test_numpy_2_in_the_venv_is_refused(machine):
    machine.env["FAKE_NUMPY_VERSION"] = "2.1.0"
    assert "it must stay 1.x" in machine.setup(expect_rc=1)


@needs_root
def test_without_a_running_systemd_the_unit_is_enabled_for_the_next_boot(machine):
    shutil.rmtree(machine.path("/run/systemd"))
    out = machine.setup()
    assert [c[1:] for c in machine.calls("systemctl") if c[1] != "is-enabled"] == [["enable", "maskwatch"]]
    assert "systemd is not running here" in out


@needs_root
def test_uninstall_keeps_config_and_data(machine):
    machine.make_pi()
    machine.setup()
    old_ids = machine.ids("maskwatch")
    events = machine.path("/var/lib/maskwatch/events.jsonl")
    events.write_text("{}\n")
    os.chown(events, *old_ids)  # written by the service
    machine.path("/etc/maskwatch/config.yaml").write_text("camera:\n  source: '0'\n")

    out = machine.setup("--uninstall")
    for gone in ["/opt/maskwatch", "/usr/local/bin/maskwatch", "/etc/systemd/system/maskwatch.service"]:
        assert not machine.path(gone).exists(), gone
    assert machine.path("/etc/maskwatch/config.yaml").read_text() == "camera:\n  source: '0'\n"
    assert machine.path("/var/lib/maskwatch/events.jsonl").exists()
    assert [c[1:] for c in machine.calls("systemctl") if c[1] != "is-active"] == [
        ["stop", "maskwatch"],
        ["disable", "maskwatch"],
        ["daemon-reload"],
    ]
    assert ["userdel", "maskwatch"] in machine.calls()
    assert "Kept /etc/maskwatch and /var/lib/maskwatch" in out

    # Installing again keeps the user's config and adopts the data under the new user's ids, which
    # differ from the old ones once another account has taken them meanwhile.
    with machine.path("/etc/passwd").open("a") as passwd:
        passwd.write(f"newcomer:x:{old_ids[0]}:{old_ids[1]}::/home/newcomer:/bin/sh\n")
    with machine.path("/etc/group").open("a") as group:
        group.write(f"newcomer:x:{old_ids[1]}:\n")
    machine.setup()
    assert machine.ids("maskwatch") != old_ids
    assert (events.stat().st_uid, events.stat().st_gid) == machine.ids("maskwatch")
    assert machine.path("/etc/maskwatch/config.yaml").read_text() == "camera:\n  source: '0'\n"
    assert machine.path("/etc/maskwatch/config.yaml.new").exists()


@needs_root
def test_purge_removes_config_and_data(machine):
    machine.setup()
    machine.path("/var/lib/maskwatch/events.jsonl").write_text("{}\n")
    machine.setup("--purge")
    for gone in [
        "/opt/maskwatch",
        "/etc/maskwatch",
        "/var/lib/maskwatch",
        "/etc/systemd/system/maskwatch.service.d",
    ]:
        assert not machine.path(gone).exists(), gone


def test_uninstall_dry_run_changes_nothing(machine):
    machine.path("/etc/systemd/system").mkdir(parents=True)
    machine.path("/etc/systemd/system/maskwatch.service").write_text("[Service]\n")
    before = machine.files()
    out = machine.setup("--purge", "--dry-run")
    assert machine.files() == before
    assert "systemctl disable maskwatch" in out and "rm -rf" in out
