"""The far end of a real Alertmanager: a webhook receiver on loopback that keeps what it was sent,
so a test can read which alerts were delivered, with which labels, firing or resolved."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import pytest

from pytest_wsconn.timing import scaled, wait_until

Notification = dict[str, Any]


class Webhook:
    """An HTTP receiver on loopback that keeps every Alertmanager webhook notification."""

    def __init__(self) -> None:
        received: list[Notification] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # the test reads notifications, not access logs

        self._received = received
        self._lock = lock
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def routing(self) -> dict[str, Any]:
        """An Alertmanager configuration that routes the shipped rules' warnings (on their
        ``severity`` label) here, one alert a notification, and the rest to a receiver with no
        integrations, so a delivery proves the labels matched."""
        return {
            "route": {
                "receiver": "nowhere",
                "group_by": ["alertname", "job", "instance"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
                "routes": [{"receiver": "team", "matchers": ['severity="warning"']}],
            },
            "receivers": [
                {"name": "nowhere"},
                {"name": "team", "webhook_configs": [{"url": self.url, "send_resolved": True}]},
            ],
        }

    def received(self) -> list[Notification]:
        """Every notification so far, oldest first."""
        with self._lock:
            return list(self._received)

    def first(self, alertname: str, status: str) -> Notification | None:
        """The first notification so far with ``status`` (firing, resolved) that carries an
        alert named ``alertname``; None before one arrives."""
        return next(
            (
                n
                for n in self.received()
                if n["status"] == status
                and any(a["labels"].get("alertname") == alertname for a in n["alerts"])
            ),
            None,
        )

    def wait_for(self, alertname: str, status: str, seconds: float) -> Notification:
        """``first(alertname, status)`` once it arrives; fails after ``seconds``."""
        if not wait_until(
            lambda: self.first(alertname, status) is not None, scaled(seconds), interval=0.1
        ):
            pytest.fail(
                f"no {status} {alertname} notification in {seconds}s; received: {self.received()}"
            )
        notification = self.first(alertname, status)
        assert notification is not None
        return notification
