"""MQTT for Home Assistant: alarms as events, "violation now", daily counts, availability by last will.

Optional and off by default (`mqtt.host` empty). paho-mqtt is the client: pure Python, the reference
implementation, and it already does keepalive, last will, and reconnection with backoff; a home-grown
client would need all of that and its own tests. It is imported only when MQTT is configured.

A broker that is down must never slow the alarm: observer calls only set a float or append to a bounded
deque (the oldest message is dropped when full); one thread of ours publishes from it while connected,
and paho's own thread does the network and the reconnecting.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge import __version__
from edge.results import AlarmEvent, FrameResult

log = logging.getLogger(__name__)

CLASSES = ("with_mask", "without_mask", "mask_weared_incorrect")
TICK_S = 0.5  # how often the publisher thread checks the "violation now" hold and the counts


class MqttUnavailable(RuntimeError):
    """MQTT is configured but the client library is missing; the message says what to install."""


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    qos: int = 0
    retain: bool = False


def node_name(configured: str = "") -> str:
    """A topic-safe device id: the configured one or the host name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", configured or socket.gethostname()) or "maskwatch"


class Topics:
    """Every topic in one place: `<prefix>/<node>/...` and the discovery configs."""

    def __init__(self, prefix: str, discovery_prefix: str, node: str):
        self.node = node
        self.base = f"{prefix}/{node}"
        self.availability = f"{self.base}/availability"
        self.violation = f"{self.base}/violation"
        self.counts = f"{self.base}/counts"
        self.event = f"{self.base}/event"
        self.discovery_prefix = discovery_prefix

    def discovery(self) -> list[Message]:
        """Home Assistant MQTT discovery: a binary sensor for "violation now" and a counter per class."""
        device = {
            "identifiers": [f"maskwatch_{self.node}"],
            "name": f"maskwatch {self.node}",
            "manufacturer": "maskwatch",
            "model": "face-mask alarm",
            "sw_version": __version__,
        }
        common = {"availability_topic": self.availability, "device": device}
        messages = [
            self._config(
                "binary_sensor",
                "violation",
                {
                    **common,
                    "name": "Violation now",
                    "state_topic": self.violation,
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "device_class": "problem",
                },
            )
        ]
        for period, key in (("today", "today"), ("this week", "week")):
            for cls in CLASSES:
                messages.append(
                    self._config(
                        "sensor",
                        f"{cls}_{key}",
                        {
                            **common,
                            "name": f"{cls.replace('_', ' ')} {period}",
                            "state_topic": self.counts,
                            "value_template": f"{{{{ value_json.{key}.{cls} | default(0) }}}}",
                            "state_class": "total_increasing",
                            "unit_of_measurement": "people",
                            "icon": "mdi:account-check" if cls == "with_mask" else "mdi:account-alert",
                        },
                    )
                )
        return messages

    def _config(self, component: str, object_id: str, body: dict) -> Message:
        body = {
            **body,
            "unique_id": f"maskwatch_{self.node}_{object_id}",
            "object_id": f"maskwatch_{object_id}",
        }
        topic = f"{self.discovery_prefix}/{component}/maskwatch_{self.node}/{object_id}/config"
        return Message(topic, json.dumps(body, sort_keys=True), qos=1, retain=True)


def make_paho_client(client_id: str) -> Any:
    """paho-mqtt 2.x (pip) or 1.6 (Debian's python3-paho-mqtt), imported only now."""
    try:
        import paho.mqtt.client as paho
    except ImportError as exc:
        raise MqttUnavailable(
            "mqtt.host is set but paho-mqtt is not installed: pip install 'paho-mqtt>=1.6' "
            "(or apt install python3-paho-mqtt), or leave mqtt.host empty"
        ) from exc
    if hasattr(paho, "CallbackAPIVersion"):
        return paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
    return paho.Client(client_id=client_id)


class MqttPublisher:
    """Observer: queues MQTT messages without blocking; a thread publishes them while connected."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 1883,
        username: str = "",
        password: str = "",
        topic_prefix: str = "maskwatch",
        discovery_prefix: str = "homeassistant",
        node_id: str = "",
        violation_hold_s: float = 5.0,
        counts: Callable[[], dict[str, dict[str, int]]] | None = None,
        max_queue: int = 200,
        keepalive_s: int = 30,
        reconnect_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        client_factory: Callable[[str], Any] = make_paho_client,
    ):
        self.topics = Topics(topic_prefix, discovery_prefix, node_name(node_id))
        self.host, self.port = host, port
        self.violation_hold_s = violation_hold_s
        self.dropped = 0
        self.published = 0
        self._counts = counts
        self._clock = clock
        self._wall_clock = wall_clock
        self._queue: collections.deque[Message] = collections.deque(maxlen=max_queue)
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._closing = False
        self._violation_until = float("-inf")
        self._violation_seen = False  # a violation since the publisher thread last looked (under _cond)
        self._violation_state: bool | None = None
        self._last_counts: dict | None = None

        self.client = client_factory(f"maskwatch-{self.topics.node}")
        if username:
            self.client.username_pw_set(username, password or None)
        self.client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=int(max(1, reconnect_max_s)))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(host, port, keepalive=keepalive_s)
        self.client.loop_start()  # paho's thread: connects, and reconnects with backoff, forever
        self._thread = threading.Thread(target=self._publish_loop, name="maskwatch-mqtt", daemon=True)
        self._thread.start()

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    # -- Observer: no network, no waiting -----------------------------------------------------------------

    def on_frame(self, result: FrameResult) -> None:
        if any(face.decision == "violation" for face in result.faces):
            self._saw_violation()

    def _saw_violation(self) -> None:
        """Hold "violation now" on, and wake the publisher thread if it was off, so that a violation
        shorter than its look (TICK_S, or a busy machine) is still published ON before it goes OFF."""
        with self._cond:
            self._violation_until = self._clock() + self.violation_hold_s
            if not self._violation_state:
                self._violation_seen = True
                self._cond.notify()

    def on_event(self, event: AlarmEvent) -> None:
        self._saw_violation()
        payload = {
            "time": dt.datetime.fromtimestamp(self._wall_clock()).astimezone().isoformat(timespec="seconds"),
            "class": event.label,
            "score": round(float(event.score), 4),
            "track_id": event.track_id,
            "track_length": event.track_length,
            "face_px": event.face_px,
        }
        self._enqueue(Message(self.topics.event, json.dumps(payload, sort_keys=True), qos=1))

    def on_camera(self, connected: bool) -> None:
        pass

    def close(self, timeout: float = 2.0) -> None:
        """Say "offline" (a clean disconnect does not fire the last will), then stop both threads. Each
        of the three steps waits at most `timeout`, so a broker that does not answer cannot hold the
        daemon's exit past systemd's stop timeout."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self.is_connected:
            try:
                info = self.client.publish(self.topics.availability, "offline", qos=1, retain=True)
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError, OSError):
                pass
        self.client.disconnect()
        self._stop_network_thread(timeout)

    def _stop_network_thread(self, timeout: float) -> None:
        """paho's loop_stop() waits for its thread without a limit, and that thread can be in a TCP
        connect to a broker host that does not answer (up to paho's connect_timeout, 5 s) or in a DNS
        lookup (no limit at all). Wait for it at most `timeout`: paho's thread is a daemon thread, so it
        cannot keep the process from exiting, and it ends by itself once its connect gives up."""
        stopper = threading.Thread(target=self.client.loop_stop, name="maskwatch-mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(timeout)
        if stopper.is_alive():
            log.warning(
                "MQTT: the connection to %s:%d did not stop within %.1f s (a connect the broker's host "
                "does not answer?); not waiting for it",
                self.host,
                self.port,
                timeout,
            )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the queue is empty (tests)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue, timeout)

    # -- paho's thread ----------------------------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, *rest: Any) -> None:
        if reason != 0:
            log.warning("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        log.info("MQTT connected to %s:%d as %s", self.host, self.port, self.topics.base)
        # Announce before anything queued: discovery and availability first, then the current state.
        announce = [*self.topics.discovery(), Message(self.topics.availability, "online", qos=1, retain=True)]
        with self._cond:
            self._violation_state = None  # publish the state again on the new session
            self._last_counts = None
            for message in reversed(announce):
                self._queue.appendleft(message)
            self._connected.set()
            self._cond.notify_all()

    def _on_disconnect(self, client: Any, userdata: Any, *args: Any) -> None:
        if self._connected.is_set():
            log.warning("MQTT disconnected from %s:%d; paho reconnects by itself", self.host, self.port)
        self._connected.clear()

    # -- our publisher thread ---------------------------------------------------------------------------

    def _enqueue(self, message: Message) -> None:
        with self._cond:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1  # the deque drops the oldest by itself
            self._queue.append(message)
            self._cond.notify()

    def _publish_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        self._closing or self._violation_seen or (self._queue and self._connected.is_set())
                    ),
                    TICK_S,
                )
                if self._closing:
                    return
            self._queue_state_changes()
            while self._connected.is_set():
                with self._cond:
                    if not self._queue:
                        self._cond.notify_all()
                        break
                    message = self._queue.popleft()
                try:
                    info = self.client.publish(
                        message.topic, message.payload, qos=message.qos, retain=message.retain
                    )
                    ok = info.rc == 0
                except ValueError as exc:  # paho refuses this message itself: retrying cannot help
                    log.warning("MQTT message to %s dropped: %s", message.topic, exc)
                    self.dropped += 1
                    continue
                except (OSError, RuntimeError) as exc:
                    log.warning("MQTT publish to %s failed: %s", message.topic, exc)
                    ok = False
                if ok:
                    self.published += 1
                else:  # not connected after all: keep it for the next session
                    with self._cond:
                        self._queue.appendleft(message)
                    break

    def _queue_state_changes(self) -> None:
        """Publish "violation now" on change (it turns off `violation_hold_s` after the last one) and the
        counts when they change: both are retained, so a new Home Assistant sees the current values."""
        with self._cond:
            seen, self._violation_seen = self._violation_seen, False
            violating = self._clock() < self._violation_until
        violating = violating or (seen and not self._violation_state)  # ON now, OFF on the next look
        if violating != self._violation_state:
            self._violation_state = violating
            self._enqueue(Message(self.topics.violation, "ON" if violating else "OFF", qos=1, retain=True))
        if self._counts is not None:
            try:
                counts = self._counts()
            except Exception:
                log.exception("MQTT: reading the counts failed")
                return
            if counts != self._last_counts:
                self._last_counts = counts
                self._enqueue(
                    Message(self.topics.counts, json.dumps(counts, sort_keys=True), qos=0, retain=True)
                )
