"""reconnect_storm: users keep a connection busy while Toxiproxy breaks the path on a schedule.

``wsconn load reconnect_storm`` takes the proxy down (``down``: connections drop, new ones are
refused) and resets peers (``reset_peer``: TCP RST on data) in turns, every ``--storm-every``
seconds for ``--storm-for`` seconds. Users exchange a message every ``--message-interval``,
notice a drop at once, and reconnect with full-jitter exponential backoff
(``--backoff-initial``, ``--backoff-max``). The summary reports the failed connections each
fault caused, the time until every user was back (full recovery) and the reconnect spread.
Request types: ``connect``, ``auth``, ``message``, and ``ping`` for a drop noticed between two
exchanges; failures during the faults are expected and counted per fault.
"""

from locust import constant, task

from pytest_wsconn.load.user import WebSocketUser


class ReconnectStorm(WebSocketUser):
    """Stay connected through the faults: exchange, and reconnect whenever the link drops."""

    record_timeline = True
    wait_time = constant(0)

    def on_start(self) -> None:
        self.ws_connect()

    @task
    def stay(self) -> None:
        if self.ws is None:
            self.ws_reconnect()
        elif self.ws_exchange():
            self.ws_hold(self.message_interval)
