"""What pytest-wsconn ships for Prometheus users: alert rules (``alerts.yml``) over the reference
server's ``wsconn_server_*`` metrics and the session's ``wsconn_session_*`` figures."""

from __future__ import annotations

from pathlib import Path

ALERT_RULES = Path(__file__).with_name("alerts.yml")
