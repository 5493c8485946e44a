"""The supervisor console: admin actions and lists, dashboards, charts and the /metrics figures."""
