"""Alert rules as admins write them: validated, kept in SQLite, published to ``alerts.json`` for the aggregator.

``aggregator ingest --follow`` checks them (:mod:`aggregator.alerts`, which
documents the rules, the K rule for counts and the two-mails-a-day cap). The
dashboards write the file after every change, atomically; the aggregator writes
only its own ``alerts-state.json`` (what it sent when), shown here read-only.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator import alerts
from aggregator.alerts import KINDS, MAX_RECIPIENTS, MAX_RULES, Rule
from dashboards.store import Store, now

KIND_LABELS = {
    "above": "more than N visitors in the last hour",
    "below": "fewer than N visitors in the last hour",
    "change": "the last hour off by N % or more from the same hour a week earlier",
}
MAX_VISITORS = 10_000_000
MAX_PERCENT = 1000
_EMAIL = re.compile(r"[^@\s,;<>\"']{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class AlertError(ValueError):
    """A rule cannot be saved as given; the message says why."""


@dataclass(frozen=True, slots=True)
class StoredRule:
    rule: Rule
    created_by: str
    created_at: int


def parse_recipients(raw: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in re.split(r"[,;\s]+", raw.strip()):
        if not part:
            continue
        if not _EMAIL.fullmatch(part) or len(part) > 254:
            raise AlertError("Recipients must be e-mail addresses, separated by commas.")
        if part.lower() not in (p.lower() for p in out):
            out.append(part)
    if not out:
        raise AlertError("Name at least one recipient.")
    if len(out) > MAX_RECIPIENTS:
        raise AlertError(f"At most {MAX_RECIPIENTS} recipients per rule.")
    return tuple(out)


def parse_threshold(raw: str, kind: str, k: int) -> int:
    if not re.fullmatch(r"[0-9]{1,8}", raw.strip()):
        raise AlertError("The threshold is a whole number.")
    value = int(raw)
    if kind == "change":
        if not 1 <= value <= MAX_PERCENT:
            raise AlertError(f"A change is 1 to {MAX_PERCENT} percent.")
    elif not k <= value <= MAX_VISITORS:
        # Under K an hour's count is never known (it is "fewer than K"): a smaller threshold could not be decided.
        raise AlertError(
            f"A visitors threshold is at least {k} (the k-anonymity threshold) and at most {MAX_VISITORS}."
        )
    return value


class AlertRules:
    def __init__(self, store: Store, data_dir: Path) -> None:
        self._store = store
        self._data_dir = data_dir

    def add(self, site: str, kind: str, threshold: str, recipients: str, k: int, created_by: str) -> Rule:
        if kind not in KINDS:
            raise AlertError("Choose what the rule watches.")
        value = parse_threshold(threshold, kind, k)
        to = parse_recipients(recipients)
        with self._store.connect() as con:
            (count,) = con.execute("SELECT count(*) FROM alert_rules").fetchone()
            if count >= MAX_RULES:
                raise AlertError(f"At most {MAX_RULES} rules in all.")
            cur = con.execute(
                "INSERT INTO alert_rules (site, kind, threshold, recipients, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (site, kind, value, ",".join(to), created_by, now()),
            )
            rule_id = int(cur.lastrowid or 0)
        self.publish()
        return Rule(rule_id, site, kind, value, to)  # type: ignore[arg-type]

    def delete(self, rule_id: int) -> Rule | None:
        with self._store.connect() as con:
            row = con.execute("SELECT * FROM alert_rules WHERE id = ?", (rule_id,)).fetchone()
            if row is None:
                return None
            con.execute("DELETE FROM alert_rules WHERE id = ?", (rule_id,))
        self.publish()
        return _rule(row).rule

    def rules(self) -> list[StoredRule]:
        with self._store.connect() as con:
            return [_rule(r) for r in con.execute("SELECT * FROM alert_rules ORDER BY site, id")]

    def publish(self) -> None:
        alerts.write_rules(self._data_dir, [r.rule for r in self.rules()])

    def state(self) -> dict[str, dict[str, Any]]:
        """What ``ingest --follow`` last recorded per rule (sent today, last sent)."""
        return alerts.read_state(self._data_dir)


def _rule(row: sqlite3.Row) -> StoredRule:
    rule = Rule(row["id"], row["site"], row["kind"], row["threshold"], tuple(row["recipients"].split(",")))
    return StoredRule(rule, row["created_by"], row["created_at"])
