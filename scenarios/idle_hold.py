"""idle_hold: as many concurrent idle connections as possible, keepalive on.

Each user opens one connection and holds it: it answers the server's pings and sends its own
every ``--ping-interval`` seconds (a ``ping`` request, failing with ``timeout`` if no pong comes
within ``--ping-timeout``). Request types: ``connect``, ``auth``, ``ping``.
One Locust process holds at most ~19,000 connections here (20,000 open files per process); go
past that with ``--workers``. Through Toxiproxy each connection costs it two files, so the
embedded stack holds ~9,900 unless ``--direct`` dials the reference server itself.
Run it: ``wsconn load idle_hold --users 5000 --spawn-rate 500 --duration 60s --direct``.
"""

from locust import constant, task

from pytest_wsconn.load.user import WebSocketUser


class IdleHold(WebSocketUser):
    """Connect once, then idle with keepalive; a dropped connection reconnects with backoff."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.ws_connect()

    @task
    def hold(self) -> None:
        if self.ws is None:
            self.ws_reconnect()
        else:
            self.ws_hold(self.ping_interval)
