"""steady_messaging: N users each hold one connection and send a message every interval.

Request types: ``connect``, ``auth``, ``message`` (the round trip of the user's own message,
which carries a unique id: its percentiles are the RTT figures of the summary; broadcasts and
pushes are counted apart). ``--message-interval`` (``--ws-message-interval``) paces each user
(at 0 it runs its round trips back to back, a quarter of a second's per Locust task);
``--message-size`` sets the payload.
Run it: ``wsconn load steady_messaging --users 100 --message-interval 0.1 --duration 60s``.
"""

import time

from locust import task

from pytest_wsconn.load.user import WebSocketUser

# At --message-interval 0, round trips per Locust task: as many as fit in BURST_SECONDS (a
# graceful stop waits at most that, plus a round trip), up to BURST. Each task costs its choice,
# the hub switch of its wait and the reactor's set-up: ~20 % of the CPU at ten per task.
BURST, BURST_SECONDS = 10_000, 0.25


class SteadyMessaging(WebSocketUser):
    """One connection per user, one round trip per interval, reconnecting with backoff."""

    def wait_time(self) -> float:
        """Constant pacing: each round trip starts ``message_interval`` after the previous."""
        started = getattr(self, "_round_started", None)
        self._round_started = time.monotonic()
        if started is None:
            return self.message_interval
        return max(0.0, self.message_interval - (self._round_started - started))

    def on_start(self) -> None:
        self.ws_connect()

    @task
    def round_trip(self) -> None:
        if self.ws is None:
            self.ws_reconnect()
        elif self.message_interval > 0:
            self.ws_exchange()
        else:
            self.ws_exchanges(BURST, within=BURST_SECONDS)
