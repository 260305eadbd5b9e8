"""The status page over real HTTP on loopback: page, JSON, /metrics, /healthz, the MJPEG stream, the token."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from loop_records import FakeClock, alarm, face, frame_result, textured
from prometheus_client.parser import text_string_to_metric_families

from edge.config import Config, replace
from edge.observers import build_observers
from edge.observers.metrics import LoopMetrics
from edge.observers.preview import PreviewStream
from edge.observers.status_server import StatusServer, StatusServerError, is_loopback

TOKEN = "k3y-for-tests-0123456789"


@pytest.fixture
def clock():
    return FakeClock(1000.0)


@pytest.fixture
def guarded(clock):
    """A status server that asks for TOKEN, on a free loopback port."""
    server = StatusServer(
        host="127.0.0.1", port=0, token=TOKEN, metrics=LoopMetrics(clock=clock), preview=PreviewStream()
    )
    yield server
    server.close()


@pytest.fixture
def page(clock, tmp_path):
    """A status server on a free loopback port with its metrics and preview observers."""
    thermal = tmp_path / "thermal"
    (thermal / "thermal_zone0").mkdir(parents=True)
    (thermal / "thermal_zone0" / "type").write_text("cpu-thermal\n")
    (thermal / "thermal_zone0" / "temp").write_text("48312\n")
    metrics = LoopMetrics(stale_after_s=5.0, clock=clock, thermal_dir=thermal)
    preview = PreviewStream(max_fps=5.0)
    server = StatusServer(
        host="127.0.0.1",
        port=0,
        token="",
        metrics=metrics,
        preview=preview,
        extra_status=lambda: {"counts": {"today": {"without_mask": 2}, "week": {}}},
        config=replace(Config(), status={"token": TOKEN}, mqtt={"password": "hunter2"}),
    )
    yield server
    server.close()


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def feed(server: StatusServer, n: int = 3, start: int = 0, **kw) -> None:
    for i in range(start, start + n):
        result = frame_result(i, [face(track_id=4, decision="violation")], **kw)
        server.metrics.on_frame(result)
        server.preview.on_frame(result)


def test_page_and_status_json(page):
    status, headers, body = get(page.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    html = body.decode()
    assert 'name="viewport"' in html and "stream.mjpg" in html and "api/status" in html

    feed(page, 3)
    status, headers, body = get(page.url + "api/status")
    data = json.loads(body)
    assert data["frames"] == 3 and data["fps"] == 15.0
    assert data["stage_ms"]["detect"] == 2.5
    assert data["tracks"] == [
        {"track_id": 4, "label": "without_mask", "score": 0.9, "decision": "violation", "face_px": 120}
    ]
    assert data["counts"]["today"] == {"without_mask": 2}
    assert data["config"]["camera"]["fps_limit"] == 15.0, "the effective config is shown"
    assert data["config"]["status"]["token"] == "(set)" and data["config"]["mqtt"]["password"] == "(set)"
    assert TOKEN.encode() not in body and b"hunter2" not in body, "secrets never leave the daemon"


def test_metrics_parse_as_prometheus_text(page):
    feed(page, 4)
    page.metrics.on_event(alarm(label="mask_weared_incorrect"))
    page.metrics.on_camera(True)
    page.metrics.on_camera(False)
    page.metrics.on_camera(True)
    status, headers, body = get(page.url + "metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}

    samples = [s for f in families.values() for s in f.samples]

    def value(name, **labels):
        return next(
            s.value
            for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    assert value("maskwatch_frames_total") == 4  # the parser strips _total from the family name
    assert families["maskwatch_frames"].type == "counter"
    assert value("maskwatch_faces_total", label="without_mask") == 4
    assert value("maskwatch_alarms_total", label="mask_weared_incorrect") == 1
    assert value("maskwatch_camera_reconnects_total") == 1
    assert value("maskwatch_cpu_temperature_celsius") == pytest.approx(48.312)
    hist = families["maskwatch_stage_latency_seconds"]
    assert hist.type == "histogram"
    detect = {
        s.labels["le"]: s.value
        for s in hist.samples
        if s.name.endswith("_bucket") and s.labels["stage"] == "detect"
    }
    assert detect["0.002"] == 0 and detect["0.003"] == 4 and detect["+Inf"] == 4  # 2.5 ms each
    assert value("maskwatch_stage_latency_seconds_sum", stage="detect") == pytest.approx(0.01)


def test_healthz_follows_the_camera_and_the_frames(page, clock):
    assert get(page.url + "healthz")[:1] == (503,), "no frames yet"
    feed(page, 1)
    status, _, body = get(page.url + "healthz")
    assert (status, body) == (200, b"frames flowing\n")

    page.metrics.on_camera(False)
    status, _, body = get(page.url + "healthz")
    assert (status, body) == (503, b"camera lost\n")

    page.metrics.on_camera(True)
    feed(page, 1, start=1)
    assert get(page.url + "healthz")[0] == 200
    clock.advance(4.9)
    assert get(page.url + "healthz")[0] == 200
    clock.advance(0.2)
    status, _, body = get(page.url + "healthz")
    assert status == 503 and body.startswith(b"no frame for 5.1 s")


def test_no_viewer_no_encoding(page):
    for i in range(50):
        page.preview.on_frame(frame_result(i))
    time.sleep(0.3)
    assert page.preview.frames_encoded == 0
    assert not [t for t in threading.enumerate() if t.name == "maskwatch-preview"]


class PartReader:
    """Splits a multipart/x-mixed-replace body on its boundary, as a browser does."""

    def __init__(self, response: http.client.HTTPResponse):
        self.response = response
        self.buffer = b""
        assert self._line() == b"--frame"

    def _line(self) -> bytes:
        line = self.response.readline()
        assert line.endswith(b"\r\n"), line
        return line[:-2]

    def next(self) -> bytes:
        headers = {}
        while line := self._line():
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        assert headers == {"content-type": "image/jpeg"}
        body = b""
        while not body.endswith(b"\r\n--frame\r\n"):
            chunk = self.response.readline()
            assert chunk, "stream ended"
            body += chunk
        return body[: -len(b"\r\n--frame\r\n")]


def test_mjpeg_stream_shows_drawn_frames_at_a_capped_rate_and_stops_with_the_viewer(page):
    stop = threading.Event()

    def loop():  # a fast loop, 100 fps, with a red-on-grey violator
        i = 0
        while not stop.is_set():
            feed(page, 1, start=i, image=textured(seed=i % 3))
            i += 1
            time.sleep(0.01)

    feeder = threading.Thread(target=loop)
    feeder.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", page.port, timeout=5)
        conn.request("GET", "/stream.mjpg")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
        parts = PartReader(response)
        first = cv2.imdecode(np.frombuffer(parts.next(), np.uint8), cv2.IMREAD_COLOR)
        assert first.shape == (480, 640, 3)
        x1, y1 = 100, 130  # the left edge of the violator's box is drawn in red (BGR)
        b, g, r = first[y1 : y1 + 60, x1 - 1 : x1 + 2].reshape(-1, 3).mean(axis=0)
        assert r > 150 and g < 100 and b < 100
        assert page.preview.viewers == 1

        encoded_before = page.preview.frames_encoded
        started = time.monotonic()
        for _ in range(5):
            assert parts.next()[:2] == b"\xff\xd8"
        elapsed = time.monotonic() - started
        assert elapsed >= 0.6, "5 frames at the 5 fps cap take about a second, never as fast as the loop"
        rate = (page.preview.frames_encoded - encoded_before) / elapsed
        assert rate <= 5.0 * 1.3
        response.close()
        conn.close()

        deadline = time.monotonic() + 3
        while page.preview.viewers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert page.preview.viewers == 0
        time.sleep(0.4)
        settled = page.preview.frames_encoded
        time.sleep(0.5)
        assert page.preview.frames_encoded == settled, "no viewer: encoding stopped"
    finally:
        stop.set()
        feeder.join()


def test_snapshot_route_serves_only_saved_snapshots(tmp_path, clock):
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "20240501-080000-t1_without_mask.jpg").write_bytes(b"\xff\xd8jpeg")
    (tmp_path / "secret.jpg").write_bytes(b"nope")
    server = StatusServer(
        host="127.0.0.1",
        port=0,
        token="",
        metrics=LoopMetrics(clock=clock),
        preview=PreviewStream(),
        snapshot_dir=snaps,
    )
    try:
        assert get(server.url + "snapshots/20240501-080000-t1_without_mask.jpg")[::2] == (
            200,
            b"\xff\xd8jpeg",
        )
        assert get(server.url + "snapshots/..%2Fsecret.jpg")[0] == 404
        assert get(server.url + "snapshots/../secret.jpg")[0] == 404
        assert get(server.url + "snapshot.jpg")[0] == 503, "no frame yet"
        server.preview.on_frame(frame_result(0))
        status, headers, body = get(server.url + "snapshot.jpg")
        assert status == 200 and body[:2] == b"\xff\xd8"
        assert get(server.url + "nothing-here")[0] == 404
    finally:
        server.close()


# -- the token ------------------------------------------------------------------------------------------


def test_token_is_required_everywhere_but_healthz(clock):
    server = StatusServer(
        host="127.0.0.1", port=0, token=TOKEN, metrics=LoopMetrics(clock=clock), preview=PreviewStream()
    )
    try:
        base = server.url
        for path in ("", "api/status", "metrics", "stream.mjpg", "snapshot.jpg"):
            assert get(base + path)[0] == 401, path
        assert get(base + "metrics", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(base + "metrics?token=wrong")[0] == 401
        assert get(base + "healthz")[0] == 503, "health is readable without the token, and says no frames"

        assert get(base + "metrics", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert get(base + f"api/status?token={TOKEN}")[0] == 200

        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", f"/?token={TOKEN}")
        response = conn.getresponse()
        response.read()
        assert response.status == 303 and response.getheader("Location") == "./"
        cookie = response.getheader("Set-Cookie")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        conn.close()
        status, _, body = get(base, {"Cookie": cookie.split(";")[0]})
        assert status == 200 and b"<title>maskwatch</title>" in body
    finally:
        server.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "maskwatch.local"])
def test_non_loopback_bind_without_token_refuses_to_start(host, tmp_path):
    config = replace(Config(), status={"port": 18080, "host": host, "token": ""})
    with pytest.raises(StatusServerError, match="status.token"):
        build_observers(config, tmp_path)


def test_loopback_names(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("127.3.0.1") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("10.0.0.1")


def test_status_page_off_by_default_and_on_with_a_port(tmp_path):
    observers = build_observers(Config(), tmp_path)
    try:
        assert [type(o.inner).__name__ for o in observers] == ["EventLog"]
    finally:
        for o in observers:
            o.close()

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    observers = build_observers(replace(Config(), status={"port": port}), tmp_path)
    try:
        names = [type(o.inner).__name__ for o in observers]
        assert names == ["EventLog", "LoopMetrics", "PreviewStream", "StatusServer"]
        for o in observers:
            o.on_event(alarm())
        status, _, body = get(f"http://127.0.0.1:{port}/api/status")
        assert status == 200 and json.loads(body)["counts"]["today"] == {"without_mask": 1}
    finally:
        for o in observers:
            o.close()


def test_head_of_the_stream_sends_headers_only_and_encodes_nothing(page):
    """HEAD must not stream: a body would break HTTP framing, and each HEAD would count as a viewer and
    start the encoder for nobody."""
    page.preview.on_frame(frame_result(0))
    conn = http.client.HTTPConnection("127.0.0.1", page.port, timeout=5)
    conn.request("HEAD", "/stream.mjpg")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
    conn.sock.settimeout(1.0)
    try:
        trailing = conn.sock.recv(1024)
    except TimeoutError:
        trailing = b"(nothing, connection still open)"
    assert trailing in (b"", b"(nothing, connection still open)"), trailing[:40]
    conn.close()
    assert page.preview.viewers == 0 and page.preview.frames_encoded == 0


def test_idle_connections_cannot_pile_up_handler_threads(page):
    """Each connection gets a thread before any token is checked; held-open sockets from anyone on the LAN
    must not grow threads without bound (the alarm and its blinking need threads too)."""
    import socket

    from edge.observers.status_server import MAX_CONNECTIONS

    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", page.port)) for _ in range(MAX_CONNECTIONS + 40)]
    try:
        time.sleep(0.5)
        assert threading.active_count() <= before + MAX_CONNECTIONS
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert get(page.url + "healthz")[0] == 503, "closed connections free their slots"


def test_a_wrong_token_in_the_address_never_replaces_a_good_cookie(guarded):
    """An old bookmarked ?token= must not sign out a browser that holds the current cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=5)
    conn.request("GET", "/?token=old-token", headers={"Cookie": f"maskwatch_token={TOKEN}"})
    response = conn.getresponse()
    response.read()
    conn.close()
    # the good cookie still lets the browser in (redirected to the page), and no cookie is set over it
    assert (response.status, response.getheader("Location")) == (303, "./")
    assert response.getheader("Set-Cookie") is None


def test_bearer_scheme_is_case_insensitive(guarded):
    """RFC 7235: the auth scheme is case-insensitive; some scrapers and proxies send `bearer`."""
    assert get(guarded.url + "metrics", {"Authorization": f"bearer {TOKEN}"})[0] == 200
    assert get(guarded.url + "metrics", {"Authorization": "bearer wrong"})[0] == 401
