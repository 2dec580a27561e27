"""What pytest-wsconn ships for Prometheus users: alert rules (``alerts.yml``) over the reference
server's ``wsconn_server_*`` metrics and the session's ``wsconn_session_*`` figures, and a Grafana
dashboard (``grafana-dashboard.json``) over the server's metrics."""

from __future__ import annotations

from pathlib import Path

ALERT_RULES = Path(__file__).with_name("alerts.yml")
GRAFANA_DASHBOARD = Path(__file__).with_name("grafana-dashboard.json")
