"""The status page in a real headless Chromium (Debian's, driven by Selenium and Debian's chromium-driver).

Two daemons: a fake loop thread that feeds the observers FrameResults at ~15 fps, and the real one
(edge.app.App with `status_port`, as `maskwatch run --status-port` starts it) on a short scene of a person
without a mask walking in, through real BlazeFace and the tests' colour classifier. The tests look at what
a person on a phone would see: the page loads, the live view shows frames that change, counts and the
events list update after an alarm, and nothing is wider than the screen.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest
from daemon_scenes import COLOR_MODEL, StepClock, approaching, empty, write_folder
from loop_records import alarm, face, frame_result, textured

from edge.config import Config, replace
from edge.observers import build_observers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
selenium = pytest.importorskip("selenium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
        reason="chromium / chromium-driver missing: run tests/install_test_deps.sh",
    ),
]

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PHONE = (390, 844)


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--window-size={PHONE[0]},{PHONE[1]}",
    ):
        options.add_argument(flag)
    metrics = {"width": PHONE[0], "height": PHONE[1], "pixelRatio": 1}
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture
def daemon(tmp_path):
    """The observers app.py builds, with the page on a free loopback port, and a loop thread feeding them."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    observers = build_observers(replace(Config(), status={"port": port, "preview_fps": 5.0}), tmp_path)
    stop = threading.Event()
    images = [textured(seed=s) for s in range(4)]

    def loop():
        i = 0
        while not stop.is_set():
            result = frame_result(i, [face(track_id=1, decision="violation")], image=images[i % 4])
            for o in observers:
                o.on_frame(result)
            i += 1
            time.sleep(1 / 15)

    for o in observers:
        o.on_camera(True)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/", observers
    stop.set()
    thread.join()
    for o in observers:
        o.close()


def text(driver, css: str) -> str | None:
    """An element's text read in one script call: the page re-renders its tables every second, so a
    Selenium element reference could go stale between finding it and reading it."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e && e.textContent", css
    )


def texts(driver, css: str) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)", css
    )


FRAME_CHECKSUM = """
const img = document.getElementById('view');
if (!img.naturalWidth) return null;
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const ctx = c.getContext('2d');
ctx.drawImage(img, 0, 0);
const d = ctx.getImageData(0, 0, c.width, c.height).data;
let sum = 0;
for (let i = 0; i < d.length; i += 97) sum = (sum * 31 + d[i]) % 1000000007;
return [c.width, c.height, sum];
"""


def test_page_stream_and_counts_in_a_real_browser(browser, daemon, tmp_path):
    url, observers = daemon
    browser.get(url)
    wait = WebDriverWait(browser, 15, poll_frequency=0.2)
    assert browser.title == "maskwatch"
    wait.until(lambda d: text(d, "#health") == "OK")
    wait.until(lambda d: text(d, "#fps") not in ("", "–"))

    first = wait.until(lambda d: d.execute_script(FRAME_CHECKSUM))
    assert first[:2] == [640, 480], "the live view shows the analysed frame"
    later = wait.until(lambda d: (c := d.execute_script(FRAME_CHECKSUM)) and c[2] != first[2] and c)
    assert later[2] != first[2], "the stream keeps showing new frames"

    assert text(browser, "#tracks tbody td.violation") == "violation"
    assert text(browser, '[data-count="today-without_mask"]') == "0"

    for o in observers:
        o.on_event(alarm(track_id=1, score=0.91))
    wait.until(lambda d: text(d, '[data-count="today-without_mask"]') == "1")
    assert text(browser, '[data-count="week-without_mask"]') == "1"
    row = wait.until(lambda d: texts(d, "#event-table tbody tr"))
    assert "without_mask" in row[0] and "0.91" in row[0]

    assert browser.execute_script("return window.innerWidth") == PHONE[0]
    too_wide = browser.execute_script(
        "return Array.from(document.querySelectorAll('body *'))"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5).map(e => e.outerHTML.slice(0, 60))"
    )
    assert too_wide == [], "the page fits a phone screen"
    browser.save_screenshot(str(tmp_path / "status-page-phone.png"))


def test_closing_the_page_stops_the_encoding(browser, daemon):
    url, observers = daemon
    preview = next(o.inner for o in observers if type(o.inner).__name__ == "PreviewStream")
    browser.get(url)
    WebDriverWait(browser, 15).until(lambda d: preview.viewers == 1)
    browser.get("about:blank")
    WebDriverWait(browser, 10).until(lambda d: preview.viewers == 0)
    time.sleep(0.5)
    settled = preview.frames_encoded
    time.sleep(0.6)
    assert preview.frames_encoded == settled


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gate:
    """An observer that holds the loop at one frame until the test opens it (so the page is seen before)."""

    def __init__(self, at_frame: int):
        self.at_frame = at_frame
        self.reached = threading.Event()
        self.opened = threading.Event()

    def on_frame(self, result):
        if result.index == self.at_frame:
            self.reached.set()
            self.opened.wait(30)

    def on_event(self, event):
        pass

    def on_camera(self, connected):
        pass

    def close(self):
        self.opened.set()


def test_real_daemon_run_with_status_port_counts_the_alarm_in_the_browser(browser, tmp_path, pins):
    from edge.app import App

    frames = empty(15) + approaching("without_mask", 30) + empty(30)
    source = write_folder(frames, tmp_path / "frames")
    config = tmp_path / "config.yaml"
    config.write_text(
        f'classifier: {{model: "{COLOR_MODEL}"}}\n'
        "camera: {fps_limit: 15}\n"
        "alarm: {duration_s: 0.4}\n"
        "logging: {stats_interval_s: 3600}\n"
    )
    port = free_port()
    gate = Gate(at_frame=10)
    app = App(
        config,
        source=str(source),
        status_port=port,
        pin_factory=pins,
        clock=StepClock(),
        state_dir=tmp_path / "state",
        extra_observers=[gate],
    )
    codes, crashes = [], []

    def run() -> None:
        try:
            codes.append(app.run())
        except BaseException as exc:  # shown by the assertion below, not lost in a thread
            crashes.append(exc)
            gate.reached.set()

    daemon = threading.Thread(target=run)
    daemon.start()
    try:
        assert gate.reached.wait(60), "the daemon did not reach frame 10"
        assert not crashes, f"the daemon failed: {crashes[0]!r}"
        url = f"http://127.0.0.1:{port}/"
        browser.get(url)
        wait = WebDriverWait(browser, 20, poll_frequency=0.2)
        wait.until(lambda d: text(d, "#health") == "OK")
        first = wait.until(lambda d: d.execute_script(FRAME_CHECKSUM))
        assert first[:2] == [640, 480]
        cell = '[data-count="today-without_mask"]'
        assert text(browser, cell) == "0"
        gate.opened.set()  # let the person walk in

        wait.until(lambda d: text(d, cell) == "1")
        row = wait.until(lambda d: texts(d, "#event-table tbody tr"))
        assert "without_mask" in row[0]
        later = wait.until(lambda d: (c := d.execute_script(FRAME_CHECKSUM)) and c[2] != first[2] and c)
        assert later[2] != first[2], "the live view follows the daemon"
    finally:
        gate.opened.set()
        app.request_stop()
        daemon.join(30)
    assert codes == [0]
    lines = (tmp_path / "state" / "events.jsonl").read_text().splitlines()
    assert len(lines) == 1 and '"class": "without_mask"' in lines[0]
