"""OneCloud Analytics dashboards: the internal web UI and the Stats API."""
