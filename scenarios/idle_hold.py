"""idle_hold: as many concurrent idle connections as possible, keepalive on.

Each user opens a connection and holds it: it answers the server's pings and sends its own
every ``--ping-interval`` seconds (a ``ping`` request, failing with ``timeout`` if no pong comes
within ``--ping-timeout``). Request types: ``connect``, ``auth``, ``ping``.
With ``--connections-per-user N`` each user holds N connections (plain ``ws://``): their reading
is left to one greenlet for the whole process (``load.reactor``), so a connection costs ~2.5 KB
instead of ~11 KB; every connection still reports its own steps, Locust counts users.
One Locust process holds at most ~19,000 connections here (20,000 open files per process); go
past that with ``--workers``. Through Toxiproxy each connection costs it two files, so the
embedded stack holds ~9,900 unless ``--direct`` dials the reference server itself.
Run it: ``wsconn load idle_hold --users 5000 --spawn-rate 500 --duration 60s --direct``.
"""

from locust import constant, task

from pytest_wsconn.load.options import settings_of
from pytest_wsconn.load.user import WebSocketUser


class IdleHold(WebSocketUser):
    """Connect, then idle with keepalive; a dropped connection reconnects with backoff."""

    wait_time = constant(0)
    held: tuple[WebSocketUser, ...] = ()  # this user and its companions, once started

    def on_start(self) -> None:
        count = settings_of(self.environment).connections_per_user
        self.held = (self, *(self.companion() for _ in range(count - 1)))
        for user in self.held:
            user.ws_connect()

    @task
    def hold(self) -> None:
        if len(self.held) > 1:
            self.ws_hold_all(self.held, self.ping_interval)
        elif self.ws is None:
            self.ws_reconnect()
        else:
            self.ws_hold(self.ping_interval)

    def on_stop(self) -> None:
        for user in self.held[1:]:
            user.on_stop()
        super().on_stop()
