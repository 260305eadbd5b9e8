"""MQTT against a real Mosquitto broker that each test starts on a free loopback port (Debian's package)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from loop_records import alarm, face, frame_result

from edge.observers.mqtt import MqttPublisher

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
pytestmark = pytest.mark.skipif(
    not Path(MOSQUITTO).exists(), reason="mosquitto is not installed: run tests/install_test_deps.sh"
)
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A mosquitto process on 127.0.0.1:port, anonymous, no persistence."""

    def __init__(self, tmp_path: Path, port: int | None = None):
        self.port = port or free_port()
        self.conf = tmp_path / f"mosquitto-{self.port}.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


class Subscriber:
    """Collects every message on the broker, retained ones included."""

    def __init__(self, port: int):
        self.messages: list[tuple[str, str, bool]] = []
        self._cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{id(self)}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("#", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, topic: str, payload: str | None = None, timeout: float = 10.0) -> str:
        def found():
            return next(
                (p for t, p, _ in self.messages if t == topic and (payload is None or p == payload)), None
            )

        with self._cond:
            self._cond.wait_for(lambda: found() is not None, timeout)
            result = found()
        assert result is not None, f"no {topic} {payload or ''} within {timeout} s; got {self.topics()}"
        return result

    def topics(self) -> list[str]:
        with self._cond:
            return [t for t, _, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()


def publisher(port: int, **kw) -> MqttPublisher:
    kw.setdefault("node_id", "door1")
    kw.setdefault("reconnect_max_s", 1.0)
    return MqttPublisher(host="127.0.0.1", port=port, **kw)


def test_discovery_event_state_and_counts(broker):
    sub = Subscriber(broker.port)
    counts = {"today": {"without_mask": 0}, "week": {"without_mask": 0}}
    pub = publisher(broker.port, violation_hold_s=0.5, counts=lambda: json.loads(json.dumps(counts)))
    try:
        config = json.loads(sub.wait_for("homeassistant/binary_sensor/maskwatch_door1/violation/config"))
        assert config["state_topic"] == "maskwatch/door1/violation"
        assert config["availability_topic"] == "maskwatch/door1/availability"
        assert config["device_class"] == "problem" and config["unique_id"] == "maskwatch_door1_violation"
        sensor = json.loads(sub.wait_for("homeassistant/sensor/maskwatch_door1/without_mask_today/config"))
        assert sensor["state_topic"] == "maskwatch/door1/counts"
        assert sensor["value_template"] == "{{ value_json.today.without_mask | default(0) }}"
        sub.wait_for("maskwatch/door1/availability", "online")
        sub.wait_for("maskwatch/door1/violation", "OFF")

        pub.on_frame(frame_result(0, [face(decision="violation")]))
        counts["today"]["without_mask"] = counts["week"]["without_mask"] = 1
        pub.on_event(alarm(track_id=3, score=0.87))
        event = json.loads(sub.wait_for("maskwatch/door1/event"))
        assert event["class"] == "without_mask" and event["track_id"] == 3 and event["score"] == 0.87
        sub.wait_for("maskwatch/door1/violation", "ON")
        assert json.loads(
            sub.wait_for(
                "maskwatch/door1/counts", '{"today": {"without_mask": 1}, "week": {"without_mask": 1}}'
            )
        )
        before = sub.topics().count("maskwatch/door1/violation")
        time.sleep(1.2)  # the hold ends: OFF again
        violation_states = [p for t, p, _ in sub.messages if t == "maskwatch/door1/violation"]
        assert violation_states[-1] == "OFF" and len(violation_states) == before + 1
    finally:
        pub.close()
        sub.wait_for("maskwatch/door1/availability", "offline")  # a clean close says so too
        sub.close()


def test_a_violation_shorter_than_the_publishers_look_is_still_published_on_then_off(broker):
    sub = Subscriber(broker.port)
    pub = publisher(broker.port, violation_hold_s=0.01)  # over long before the thread's next 0.5 s look
    try:
        sub.wait_for("maskwatch/door1/violation", "OFF")
        pub.on_frame(frame_result(0, [face(decision="violation")]))
        sub.wait_for("maskwatch/door1/violation", "ON")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = [p for t, p, _ in sub.messages if t == "maskwatch/door1/violation"]
            if states[-1] == "OFF" and len(states) == 3:
                break
            time.sleep(0.05)
        assert [p for t, p, _ in sub.messages if t == "maskwatch/door1/violation"] == ["OFF", "ON", "OFF"]
    finally:
        pub.close()
        sub.close()


def test_last_will_marks_the_device_offline_when_the_daemon_dies(broker):
    sub = Subscriber(broker.port)
    script = (
        "import sys, time\n"
        "from edge.observers.mqtt import MqttPublisher\n"
        f"p = MqttPublisher(host='127.0.0.1', port={broker.port}, node_id='door2')\n"
        "while not p.is_connected: time.sleep(0.05)\n"
        "p.flush(); print('up', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout.readline().strip() == "up"
        sub.wait_for("maskwatch/door2/availability", "online")
        child.send_signal(signal.SIGKILL)  # no clean disconnect: only the broker can tell
        child.wait(5)
        sub.wait_for("maskwatch/door2/availability", "offline")
    finally:
        if child.poll() is None:
            child.kill()
        sub.close()


@pytest.mark.slow
def test_broker_down_at_start_then_up_reconnects_and_delivers(tmp_path):
    down = Broker(tmp_path)  # a port nobody listens on yet
    pub = publisher(down.port)
    try:
        pub.on_event(alarm(track_id=11))  # queued while there is no broker
        time.sleep(1.0)
        assert not pub.is_connected
        down.start()
        sub = Subscriber(down.port)
        sub.wait_for("maskwatch/door1/availability", "online", timeout=15)
        assert json.loads(sub.wait_for("maskwatch/door1/event"))["track_id"] == 11
        sub.close()

        down.stop()  # and once more: the broker restarts under a running daemon
        deadline = time.monotonic() + 10
        while pub.is_connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pub.is_connected
        pub.on_event(alarm(track_id=12))
        down.start()
        sub2 = Subscriber(down.port)
        assert json.loads(sub2.wait_for("maskwatch/door1/event", timeout=15))["track_id"] == 12
        sub2.close()
    finally:
        pub.close()
        down.stop()


def test_a_dead_or_silent_broker_never_blocks_the_loop():
    """Nothing listening, and a 'broker' that accepts TCP and never answers: observer calls stay instant."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    for port in (free_port(), silent.getsockname()[1]):
        pub = publisher(port, max_queue=10)
        try:
            started = time.perf_counter()
            for i in range(1000):
                pub.on_frame(frame_result(i, [face(decision="violation")]))
                pub.on_event(alarm(track_id=i))
            elapsed = time.perf_counter() - started
            assert elapsed < 0.25, f"2000 observer calls took {elapsed:.3f} s"
            assert not pub.is_connected
            assert pub.dropped >= 990 - 10, "the queue stays bounded: the oldest messages go"
        finally:
            started = time.perf_counter()
            pub.close()
            assert time.perf_counter() - started < 5
    silent.close()


def test_close_does_not_wait_out_a_tcp_connect_that_hangs(caplog):
    """A broker host that is down or behind a firewall that drops packets never completes the TCP
    handshake; paho's thread then sits in connect() for its connect_timeout (5 s) and its loop_stop()
    waits for that without a limit. The alarm outputs go off only after the observers close."""
    listener = socket.socket()  # a full listen queue that nobody accept()s: Linux drops further SYNs
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname(), timeout=1)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(listener.getsockname())
        pytest.skip("this kernel completes a connect to a full listen queue: nothing hangs here")
    except TimeoutError:
        pass
    finally:
        probe.close()

    pub = publisher(listener.getsockname()[1])
    try:
        time.sleep(0.3)  # paho's thread is in its connect() now
        assert not pub.is_connected
    finally:
        started = time.perf_counter()
        pub.close(timeout=0.5)
        elapsed = time.perf_counter() - started
        filler.close()
        listener.close()
    assert elapsed < 2.0, f"close took {elapsed:.1f} s"
    assert "did not stop within 0.5 s" in caplog.text


class RefusingClient:
    """A paho stand-in that connects at once and refuses (ValueError) to publish one topic, as paho does
    for a topic it finds invalid."""

    def __init__(self, client_id: str, refused: str):
        self.refused, self.tried, self.sent = refused, [], []

    def username_pw_set(self, *a): ...
    def will_set(self, *a, **kw): ...
    def reconnect_delay_set(self, **kw): ...
    def connect_async(self, *a, **kw): ...
    def disconnect(self): ...
    def loop_stop(self): ...

    def loop_start(self):
        self.on_connect(self, None, {}, 0)

    def publish(self, topic, payload, qos=0, retain=False):
        self.tried.append(topic)
        if topic == self.refused:
            raise ValueError("Publish topic cannot contain wildcards.")
        self.sent.append(topic)
        return Sent()


class Sent:
    """paho's MQTTMessageInfo for a message handed to the socket."""

    rc = 0

    def wait_for_publish(self, timeout=None):
        return True


def test_a_message_the_client_refuses_is_dropped_not_retried_forever():
    """A ValueError from publish never goes away: retrying it spun a core and blocked every later message."""
    refused = "homeassistant/binary_sensor/maskwatch_door1/violation/config"
    clients = []

    def factory(client_id):
        clients.append(RefusingClient(client_id, refused))
        return clients[-1]

    pub = publisher(1, client_factory=factory)
    try:
        pub.on_event(alarm(track_id=5))
        assert pub.flush(5)
        client = clients[0]
        assert client.tried.count(refused) == 1
        assert "maskwatch/door1/availability" in client.sent and "maskwatch/door1/event" in client.sent
    finally:
        pub.close()
