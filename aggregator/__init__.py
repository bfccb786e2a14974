"""OneCloud Analytics aggregator: the DuckDB lake, rollups, retention and queries."""
