"""The access audit log (PRIVACY.md rule 10): who viewed or exported which report of which site, when.

Entries are appended by the views and never edited; admins read them on the
audit page. Values are capped in length because some (a failed login's user
name, a query's filters) come from whoever sends the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.store import Store, now

_CAP = 300


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: int
    actor: str
    action: str
    site: str | None
    report: str | None
    detail: str | None


def _cap(value: str | None) -> str | None:
    return None if value is None else value[:_CAP]


class AuditLog:
    def __init__(self, store: Store) -> None:
        self._store = store

    def write(
        self, actor: str, action: str, site: str | None = None, report: str | None = None, detail: str | None = None
    ) -> None:
        with self._store.connect() as con:
            con.execute(
                "INSERT INTO audit_log (ts, actor, action, site, report, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (now(), _cap(actor) or "", _cap(action) or "", _cap(site), _cap(report), _cap(detail)),
            )

    @staticmethod
    def _where(actor: str | None, action: str | None, site: str | None) -> tuple[str, list[object]]:
        where: list[str] = []
        params: list[object] = []
        for column, value in (("actor", actor), ("action", action), ("site", site)):
            if value:
                where.append(f"{column} = ?")  # column names are fixed here; values are bound
                params.append(value)
        return (" WHERE " + " AND ".join(where) if where else ""), params

    def recent(
        self,
        limit: int = 100,
        offset: int = 0,
        actor: str | None = None,
        action: str | None = None,
        site: str | None = None,
    ) -> list[AuditEntry]:
        where, params = self._where(actor, action, site)
        with self._store.connect() as con:
            return [
                AuditEntry(r["id"], r["ts"], r["actor"], r["action"], r["site"], r["report"], r["detail"])
                for r in con.execute(f"SELECT * FROM audit_log{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                                     [*params, limit, offset])
            ]  # fmt: skip

    def count(self, actor: str | None = None, action: str | None = None, site: str | None = None) -> int:
        where, params = self._where(actor, action, site)
        with self._store.connect() as con:
            (n,) = con.execute(f"SELECT count(*) FROM audit_log{where}", params).fetchone()
        return int(n)

    def choices(self) -> dict[str, list[str]]:
        """The actors, actions and sites the log holds (for the filter lists), at most 500 of each."""
        out: dict[str, list[str]] = {}
        with self._store.connect() as con:
            for column in ("actor", "action", "site"):
                rows = con.execute(
                    f"SELECT DISTINCT {column} FROM audit_log WHERE {column} IS NOT NULL ORDER BY 1 LIMIT 500"
                )
                out[column] = [r[0] for r in rows]
        return out
