"""The status page's HTTP server: stdlib only, so the Pi needs no web framework.

Routes: `/` the page (page.html, beside this file), `/api/status` its JSON, `/stream.mjpg` the live
view, `/snapshot.jpg` one frame, `/snapshots/<name>` a saved violation snapshot, `/metrics` Prometheus
text, `/healthz` 200 or 503.
Everything but /healthz needs the token when one is configured (`?token=`, `Authorization: Bearer`, or
the cookie `?token=` sets). A non-loopback bind without a token refuses to start: the page shows faces.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from edge import __version__
from edge.observers.metrics import LoopMetrics
from edge.observers.preview import PreviewStream
from edge.results import AlarmEvent, FrameResult

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("page.html")
COOKIE = "maskwatch_token"
MAX_STREAM_VIEWERS = 4
MAX_CONNECTIONS = 32  # handler threads at once; a browser keeps about 6 connections open
SECRET_KEYS = {("status", "token"), ("mqtt", "password")}
SNAPSHOT_NAME = re.compile(r"^[\w.-]+\.jpg$")


class StatusServerError(ValueError):
    """The status page cannot start with this configuration; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_config(config: Any) -> dict:
    """The effective config for display: secrets replaced by whether they are set."""
    data = dataclasses.asdict(config)
    for section, key in SECRET_KEYS:
        if section in data and key in data[section]:
            data[section][key] = "(set)" if data[section][key] else ""
    return data


class StatusServer:
    """Serves the page from a daemon thread; an Observer only so that `close()` stops it with the rest."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        token: str,
        metrics: LoopMetrics,
        preview: PreviewStream,
        extra_status: Callable[[], dict] | None = None,
        config: Any = None,
        snapshot_dir: Path | None = None,
    ):
        if not token and not is_loopback(host):
            raise StatusServerError(
                f"status.host is {host!r}, which other machines can reach, and status.token is empty: "
                "set status.token in config.yaml (e.g. the output of `openssl rand -hex 16`) "
                "or bind to 127.0.0.1"
            )
        self.token = token
        self.metrics = metrics
        self.preview = preview
        self.extra_status = extra_status or dict
        self.config_view = public_config(config) if config is not None else {}
        self.snapshot_dir = snapshot_dir
        self.page = PAGE.read_bytes()
        self._closing = threading.Event()
        server_class = _IPv6Server if ":" in host else _Server
        try:
            self._httpd = server_class((host, port), _make_handler(self))
        except OSError as exc:
            raise StatusServerError(f"status page cannot listen on {host}:{port}: {exc.strerror}") from exc
        self.host, self.port = host, self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="maskwatch-status",
            daemon=True,
        )
        self._thread.start()
        log.info("status page on http://%s:%d/%s", host, self.port, " (token required)" if token else "")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # -- Observer: nothing per frame; the metrics and preview observers hold the state ----------------

    def on_frame(self, result: FrameResult) -> None:
        pass

    def on_event(self, event: AlarmEvent) -> None:
        pass

    def on_camera(self, connected: bool) -> None:
        pass

    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        self.preview.close()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(2.0)

    # -- what the handler asks --------------------------------------------------------------------------

    def authorised(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> bool:
        if not self.token:
            return True
        offered = []
        scheme, _, credentials = handler.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":  # RFC 7235: the scheme is case-insensitive
            offered.append(credentials.strip())
        offered.extend(query.get("token", []))
        for part in handler.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                offered.append(unquote(value))
        return any(self.is_token(o) for o in offered)

    def is_token(self, offered: str) -> bool:
        """Constant-time comparison, so response times do not reveal how much of a guess was right."""
        return bool(self.token) and hmac.compare_digest(offered.encode(), self.token.encode())

    def status(self) -> dict:
        data = self.metrics.summary()
        data.update(self.extra_status())
        data["config"] = self.config_view
        data["version"] = __version__
        data["viewers"] = self.preview.viewers
        return data


class _Server(ThreadingHTTPServer):
    """One thread per connection, but at most MAX_CONNECTIONS: threads start before the token is checked,
    so without a cap anyone on the LAN could hold sockets open until the process runs out of threads
    (systemd's TasksMax), and the alarm needs threads too. A connection over the cap is closed at once."""

    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any):
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.debug("status page: %d connections open, refusing %s", MAX_CONNECTIONS, client_address)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets its connection is routine: debug log, not a traceback on stderr."""
        log.debug("status page: request from %s failed", client_address, exc_info=True)


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


def _make_handler(server: StatusServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"maskwatch/{__version__}"
        protocol_version = "HTTP/1.1"
        timeout = 30  # seconds a silent or stalled client may hold a handler thread

        def log_message(self, fmt: str, *args: Any) -> None:  # access log at debug level, not stderr
            log.debug("%s %s", self.address_string(), fmt % args)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/healthz":
                return self._healthz()
            if not server.authorised(self, query):
                return self._send(
                    HTTPStatus.UNAUTHORIZED,
                    b"token required: add ?token=... to the address\n",
                    "text/plain; charset=utf-8",
                    {"WWW-Authenticate": "Bearer"},
                )
            if url.path == "/" and "token" in query:
                # Keep the token out of the address bar and history: a cookie carries it from here. Only
                # the right token goes in it: a stale one beside a good cookie must not sign the viewer out.
                headers = {"Location": "./"}
                if server.is_token(query["token"][0]):
                    headers["Set-Cookie"] = (
                        f"{COOKIE}={quote(server.token)}; HttpOnly; SameSite=Strict; Path=/"
                    )
                return self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", headers)
            routes = {
                "/": self._page,
                "/index.html": self._page,
                "/api/status": self._status,
                "/metrics": self._metrics,
                "/stream.mjpg": self._stream,
                "/snapshot.jpg": self._snapshot,
            }
            if url.path in routes:
                return routes[url.path]()
            if url.path.startswith("/snapshots/"):
                return self._saved_snapshot(url.path[len("/snapshots/") :])
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

        # -- routes ----------------------------------------------------------------------------------

        def _page(self) -> None:
            self._send(HTTPStatus.OK, server.page, "text/html; charset=utf-8")

        def _status(self) -> None:
            body = json.dumps(server.status(), default=str).encode()
            self._send(HTTPStatus.OK, body, "application/json")

        def _metrics(self) -> None:
            body = server.metrics.render_prometheus().encode()
            self._send(HTTPStatus.OK, body, "text/plain; version=0.0.4; charset=utf-8")

        def _healthz(self) -> None:
            health = server.metrics.health()
            code = HTTPStatus.OK if health.ok else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(code, (health.reason + "\n").encode(), "text/plain; charset=utf-8")

        def _snapshot(self) -> None:
            jpeg = server.preview.encode_latest()
            if jpeg is None:
                return self._send(
                    HTTPStatus.SERVICE_UNAVAILABLE, b"no frame yet\n", "text/plain; charset=utf-8"
                )
            self._send(HTTPStatus.OK, jpeg, "image/jpeg")

        def _saved_snapshot(self, name: str) -> None:
            path = server.snapshot_dir / name if server.snapshot_dir and SNAPSHOT_NAME.match(name) else None
            try:
                data = path.read_bytes() if path else None
            except OSError:
                data = None
            if data is None:
                return self._send(HTTPStatus.NOT_FOUND, b"no such snapshot\n", "text/plain; charset=utf-8")
            self._send(HTTPStatus.OK, data, "image/jpeg")

        def _stream(self) -> None:
            if server.preview.viewers >= MAX_STREAM_VIEWERS:
                return self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many viewers\n", "text/plain")
            self.close_connection = True
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self._common_headers()
            self.end_headers()
            if self.command == "HEAD":  # headers only: no viewer, no encoding, no body
                return
            seq = 0
            # Every write ends with the next part's boundary and headers: browsers show a part only once
            # they have seen what follows it, so this way the newest frame shows at once, and a stalled
            # loop (camera lost) still shows its last picture. Parts are delimited by the boundary alone.
            next_part = b"\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n"
            with server.preview.watch():
                try:
                    self.wfile.write(next_part[2:])
                    while not server._closing.is_set():
                        seq, jpeg = server.preview.next_jpeg(seq, timeout=1.0)
                        if jpeg is None:
                            continue
                        self.wfile.write(jpeg + next_part)
                        self.wfile.flush()
                except OSError:  # the viewer went away
                    return

        # -- plumbing --------------------------------------------------------------------------------

        def _common_headers(self) -> None:
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")

        def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self._common_headers()
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except OSError:
                pass

        do_HEAD = do_GET  # noqa: N815

    return Handler
