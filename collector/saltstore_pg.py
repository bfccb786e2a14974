"""Day salts in PostgreSQL: one salt per UTC day shared by collectors on many hosts.

PRIVACY.md rule 2, kept the same way as :class:`collector.salts.FileSaltStore`:

- **random, never derived**: the collector that first needs a day's salt draws it
  from the OS (``secrets``) and offers it with ``INSERT ... ON CONFLICT (day) DO
  NOTHING``; then every collector ``SELECT``\\ s the row that won. Several collectors
  starting the day at once therefore agree on one salt without any coordination
  beyond the primary key, and no salt is ever computed from something long-lived.
- **rotated at 00:00 UTC**: the row is keyed by the UTC day.
- **destroyed within 48 h**: :meth:`PgSaltStore.purge` deletes every row older than
  yesterday, then runs ``VACUUM FULL`` on the (two-row) table so the deleted tuples
  do not linger in the heap file until autovacuum happens to reach it. What
  PostgreSQL still keeps after that (WAL segments until recycled, WAL archives,
  base backups, replicas) is outside this process; README "Scale-out" says how the
  salt database must be run so that it does not outlive 48 hours.
- **readable by collectors only**: the DSN names a role that only collectors have;
  the aggregator never receives it (its settings have no such field).

Every call opens its own short connection with a connect timeout. Calls are rare
(the first request of a day, plus purges), and a connection that is not kept
cannot be half-broken by a database restart. :class:`collector.salts.DayKeys`
never calls this on the event loop (``remote = True``).
"""

from __future__ import annotations

import datetime as dt
import secrets

import psycopg

from collector.salts import SALT_BYTES, SaltUnavailable

TABLE = "analytics_day_salts"
# An arbitrary constant: serialises the CREATE TABLE of collectors starting together.
_SCHEMA_LOCK = 0x5A17_5A17

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    day  date  PRIMARY KEY,
    salt bytea NOT NULL CHECK (length(salt) >= 16)
)
"""


class PgSaltStore:
    """Salts as rows ``(day, salt)`` in one small table; see the module doc for the rules."""

    # DayKeys must not call a network store from the event loop.
    remote = True

    def __init__(self, dsn: str, *, connect_timeout: float = 3.0) -> None:
        if not dsn:
            raise ValueError("a PostgreSQL DSN is needed")
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self._schema_ready = False
        self._purged_for: dt.date | None = None

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(
                self.dsn,
                connect_timeout=max(1, int(self.connect_timeout)),
                autocommit=True,
                application_name="onecloud-collector",
            )
        except psycopg.Error as exc:
            # The message may contain the DSN's host, never a visitor's data; keep only the class.
            raise SaltUnavailable(f"salt store unreachable ({exc.__class__.__name__})") from None

    def _ensure_schema(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        if self._schema_ready:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(_SCHEMA)
        self._schema_ready = True

    def salt_for(self, day: dt.date) -> bytes:
        try:
            with self._connect() as conn:
                self._ensure_schema(conn)
                conn.execute(
                    f"INSERT INTO {TABLE} (day, salt) VALUES (%s, %s) ON CONFLICT (day) DO NOTHING",
                    (day, secrets.token_bytes(SALT_BYTES)),
                )
                row = conn.execute(f"SELECT salt FROM {TABLE} WHERE day = %s", (day,)).fetchone()
        except psycopg.Error as exc:
            raise SaltUnavailable(f"salt store failed ({exc.__class__.__name__})") from None
        if row is None or not isinstance(row[0], bytes) or len(row[0]) != SALT_BYTES:
            raise SaltUnavailable("salt store returned no usable salt")
        return row[0]

    def purge(self, today: dt.date) -> list[dt.date]:
        """Destroy every salt older than yesterday; returns the days destroyed.

        Runs against the database at most once per day per process once it has
        succeeded (housekeeping calls it every few seconds).
        """
        if self._purged_for == today:
            return []
        keep_from = today - dt.timedelta(days=1)
        try:
            with self._connect() as conn:
                self._ensure_schema(conn)
                rows = conn.execute(f"DELETE FROM {TABLE} WHERE day < %s RETURNING day", (keep_from,)).fetchall()
                if rows:
                    # DELETE only marks the tuples dead; VACUUM FULL rewrites the table into a
                    # new file and unlinks the old one, so the salts' bytes leave the heap now.
                    conn.execute(f"VACUUM FULL {TABLE}")
        except psycopg.Error as exc:
            raise SaltUnavailable(f"salt purge failed ({exc.__class__.__name__})") from None
        self._purged_for = today
        return sorted(r[0] for r in rows if isinstance(r[0], dt.date))

    def days(self) -> list[dt.date]:
        """The days whose salt exists (for tests and the operator; never the salts)."""
        with self._connect() as conn:
            self._ensure_schema(conn)
            rows = conn.execute(f"SELECT day FROM {TABLE} ORDER BY day").fetchall()
        return [r[0] for r in rows if isinstance(r[0], dt.date)]
