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

    def recent(
        self, limit: int = 100, offset: int = 0, actor: str | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        sql = "SELECT * FROM audit_log"
        where: list[str] = []
        params: list[object] = []
        if actor:
            where.append("actor = ?")
            params.append(actor)
        if action:
            where.append("action = ?")
            params.append(action)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        params += [limit, offset]
        with self._store.connect() as con:
            return [
                AuditEntry(r["id"], r["ts"], r["actor"], r["action"], r["site"], r["report"], r["detail"])
                for r in con.execute(sql, params)
            ]
