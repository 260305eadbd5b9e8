"""A Debian root to install into: made by debootstrap, entered with chroot, booted with systemd-nspawn.

The install test needs three things from it: commands run inside (setup.sh, the demo as the service
user), the network for apt and pip, and a real systemd to start the installed unit. Mounts are undone
in `finally` blocks and checked before anything under the root is deleted, so a failed test never
leaves this machine's /dev or /sys bound under a folder that a later `rm -rf` would walk into.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAKE_ROOT = HERE / "make_root.sh"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def make_root(root: Path, cache_dir: Path | None) -> None:
    """debootstrap a minimal Bookworm (systemd, python3, CA certificates), or unpack the cached one."""
    command = ["bash", str(MAKE_ROOT), str(root)] + ([str(cache_dir)] if cache_dir else [])
    subprocess.run(command, check=True, timeout=1800)


def configure_network(root: Path) -> None:
    """DNS, and pip's trust of the same HTTPS certificates this machine's pip trusts.

    A Pi needs none of this; a sandboxed CI machine may reach PyPI through a proxy whose certificate
    authority only the host's bundle has.
    """
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    lines = ["[global]"]
    if HOST_CA_BUNDLE.is_file():
        shutil.copy(HOST_CA_BUNDLE, root / "etc/pip-host-ca.crt")
        lines.append("cert = /etc/pip-host-ca.crt")
    index = os.environ.get("PIP_INDEX_URL", "")
    if index.startswith(("http://", "https://")):
        lines.append(f"index-url = {index}")
    (root / "etc/pip.conf").write_text("\n".join(lines) + "\n")


def copy_repository(repo: Path, dest: Path) -> None:
    """The files a `git clone` would give a user (tracked files, as they are in the work tree)."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z"], capture_output=True, check=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = repo / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


class Chroot:
    """`with Chroot(root) as c: c.run(...)`: /proc, /sys and /dev mounted for the duration.

    `caches` binds apt's and pip's download folders from this machine, so repeated local runs do not
    download the same packages again; CI passes none and starts from the mirror.
    """

    def __init__(self, root: Path, caches: Path | None = None):
        self.root = root.resolve()
        self.caches = caches

    def __enter__(self) -> Chroot:
        try:
            self._mount("proc", "proc", "-t", "proc")
            for fs in ("sys", "dev"):
                self._mount(fs, f"/{fs}", "--rbind")
                subprocess.run(["mount", "--make-rslave", str(self.root / fs)], check=True)
            if self.caches:
                self._bind_cache("apt", "var/cache/apt/archives")
                self._bind_cache("pip", "root/.cache/pip")
        except BaseException:
            self.unmount()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.unmount()

    def _mount(self, where: str, what: str, *options: str) -> None:
        subprocess.run(["mount", *options, what, str(self.root / where)], check=True)

    def _bind_cache(self, name: str, where: str) -> None:
        source = self.caches / name
        source.mkdir(parents=True, exist_ok=True)
        (self.root / where).mkdir(parents=True, exist_ok=True)
        self._mount(where, str(source), "--bind")

    def unmount(self) -> None:
        for point in mounts_under(self.root):
            if subprocess.run(["umount", "-R", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-R", "-l", point], capture_output=True)
        left = mounts_under(self.root)
        if left:
            raise RuntimeError(f"still mounted under {self.root}: {left}")

    def run(self, *command: str, user: str | None = None, timeout: float = 1800, **kwargs):
        """Run inside the root (as `user` via runuser), niced: the machine is shared."""
        inner = ["runuser", "-u", user, "--", *command] if user else list(command)
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/root",
        }
        env |= kwargs.pop("env", {})
        return subprocess.run(
            ["nice", "-n", "19", "chroot", str(self.root), *inner],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )


class BootedRoot:
    """The root booted with `systemd-nspawn --boot`: its own systemd as PID 1, reached with nsenter."""

    def __init__(self, root: Path, console_log: Path):
        self.root = root.resolve()
        self.console_log = console_log
        self.process: subprocess.Popen | None = None
        self.init_pid = 0

    def __enter__(self) -> BootedRoot:
        # The console goes to a file: a pipe nobody reads would fill up and stall the container's systemd.
        with open(self.console_log, "wb") as log:
            self.process = subprocess.Popen(
                ["systemd-nspawn", "-D", str(self.root), "--boot", "--register=no", "--keep-unit", "--quiet"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.init_pid = self._wait_for_init()
            self.wait_until(
                lambda: self.systemctl("is-system-running").stdout.strip() in ("running", "degraded"), 120
            )
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        with contextlib.suppress(RuntimeError):
            Chroot(self.root).unmount()

    def console(self) -> str:
        return self.console_log.read_text(errors="replace")[-5000:]

    def _wait_for_init(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited: {self.console()}")
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids = children.read_text().split() if children.exists() else []
            if pids:
                return int(pids[0])
            time.sleep(0.2)
        raise TimeoutError("the container's systemd did not start within 60 s")

    def run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-a", "--", *command],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def systemctl(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("systemctl", "--no-pager", *args)

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit).stdout

    @staticmethod
    def wait_until(condition, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not true within {timeout:.0f} s")
            time.sleep(0.5)


def remove_root(root: Path) -> None:
    """Delete a test root, refusing while anything is still mounted under it."""
    left = mounts_under(root)
    if left:
        raise RuntimeError(f"not deleting {root}: still mounted {left}")
    shutil.rmtree(root, ignore_errors=True)
