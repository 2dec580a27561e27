"""connect_storm: open/close churn — every user connects, authenticates and closes, back to back.

Request types: ``connect`` (handshake), ``auth`` (when a token is sent), ``close``.
Run it: ``wsconn load connect_storm --users 50 --spawn-rate 50 --duration 30s``.
"""

from locust import constant, task

from pytest_wsconn.load.user import WebSocketUser


class ConnectStorm(WebSocketUser):
    """Connect, then close at once, with no wait between rounds."""

    wait_time = constant(0)

    @task
    def churn(self) -> None:
        if self.ws_connect():
            self.ws_close()
        else:
            self.ws_reconnect()  # a failed attempt backs off instead of hammering the server
