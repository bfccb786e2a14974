"""Traffic alerts: per-site rules on the visitors of the last hour, checked by ``aggregator ingest --follow``.

**Rules** are written by admins in the dashboards, which keep them in their
SQLite file and write all of them to ``<data_dir>/alerts.json`` after every
change (:func:`write_rules`, atomically; :mod:`aggregator.jsonfile`). The
aggregator reads that file and never imports the dashboards. A rule is one of:

- ``above``: more than ``threshold`` visitors in the last hour;
- ``below``: fewer than ``threshold`` visitors in the last hour;
- ``change``: the last hour is off by at least ``threshold`` percent from the
  same hour a week earlier (up or down; :func:`aggregator.periods.change`).

**K applies** (PRIVACY.md rule 5): an alert is a count sent by e-mail, and an
hour's visitors are :meth:`aggregator.query.Querier.current_visitors`, which
says "fewer than K" instead of a smaller number. So thresholds are at least K,
a mail says "fewer than K" rather than a number, and a change against an hour
under K is the bound that K allows ("at least 60 % fewer"), never an exact
small count.

**At most two e-mails a day per rule** (UTC day), and only when a condition
starts to hold (it held not at the previous check): a condition that stays
true all day sends one mail, a flapping one at most two. What was sent is kept
in ``<data_dir>/alerts-state.json`` (written by the aggregator only), so a
restart neither repeats nor forgets. Checks run at most once a minute.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal

from aggregator.jsonfile import SharedFileError, read_json, write_json
from aggregator.periods import change
from aggregator.query import Querier
from aggregator.settings import Settings

RULES_FILE = "alerts.json"
STATE_FILE = "alerts-state.json"
VERSION = 1
KINDS = ("above", "below", "change")
MAX_PER_DAY = 2
CHECK_SECONDS = 60.0
WINDOW_MINUTES = 60
MAX_RULES = 200
MAX_RECIPIENTS = 10
Kind = Literal["above", "below", "change"]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    site: str
    kind: Kind
    threshold: int  # visitors (above, below) or percent (change)
    recipients: tuple[str, ...]

    def describe(self, k: int) -> str:
        if self.kind == "above":
            return f"more than {self.threshold} visitors in an hour"
        if self.kind == "below":
            return f"fewer than {self.threshold} visitors in an hour"
        return f"an hour {self.threshold} % or more off the same hour a week earlier"


def write_rules(data_dir: Path, rules: list[Rule]) -> None:
    items = [
        {"id": r.id, "site": r.site, "kind": r.kind, "threshold": r.threshold, "recipients": list(r.recipients)}
        for r in sorted(rules, key=lambda r: r.id)
    ]
    write_json(data_dir / RULES_FILE, {"version": VERSION, "rules": items})


def read_rules(data_dir: Path) -> list[Rule]:
    data = read_json(data_dir / RULES_FILE)
    if data is None:
        return []
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("rules"), list):
        raise SharedFileError(f"{RULES_FILE}: not a version {VERSION} rules file")
    out = []
    for item in data["rules"][:MAX_RULES]:
        try:
            kind = item["kind"]
            recipients = tuple(str(r) for r in item["recipients"][:MAX_RECIPIENTS])
            rule = Rule(int(item["id"]), str(item["site"]), kind, int(item["threshold"]), recipients)
        except (TypeError, KeyError, ValueError):
            raise SharedFileError(f"{RULES_FILE}: a rule needs id, site, kind, threshold and recipients") from None
        if kind not in KINDS or rule.threshold < 1 or not recipients:
            raise SharedFileError(f"{RULES_FILE}: rule {rule.id} is not valid")
        out.append(rule)
    return out


def read_state(data_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        data = read_json(data_dir / STATE_FILE)
    except SharedFileError:
        return {}  # ours alone; if it is damaged, start again (at worst one mail more today)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), dict):
        return {}
    return {str(k): v for k, v in data["rules"].items() if isinstance(v, dict)}


@dataclass(frozen=True, slots=True)
class Finding:
    rule: Rule
    summary: str  # the subject's words, K applied
    text: str  # what the mail says, K applied


def _count(n: int | None, k: int) -> str:
    return f"fewer than {k} visitors" if n is None else f"{n} visitor{'s' if n != 1 else ''}"


def evaluate(querier: Querier, rule: Rule, now: dt.datetime) -> Finding | None:
    """The finding if the rule's condition holds now; None when it does not (or cannot be told under K)."""
    k = querier.settings.k_anonymity
    current = querier.current_visitors(rule.site, now, WINDOW_MINUTES).visitors
    if rule.kind == "above":
        if current is not None and current > rule.threshold:
            said = f"{_count(current, k)} in the last hour"
            return Finding(rule, said, f"{said} (alert above {rule.threshold})")
        return None
    if rule.kind == "below":
        # Under K the count is not known, but it is below K, and a threshold is at least K.
        if current is None or current < rule.threshold:
            said = f"{_count(current, k)} in the last hour"
            return Finding(rule, said, f"{said} (alert below {rule.threshold})")
        return None
    before = querier.current_visitors(rule.site, now - dt.timedelta(days=7), WINDOW_MINUTES).visitors
    if current is None and before is None:
        return None  # two hours under K: nothing can be said
    # An hour under K counts as K - 1 at most: the change is then a bound ("at least"), never a small count.
    pct = change("visitors", current if current is not None else k - 1, before if before is not None else k - 1)
    if pct is None or abs(pct) < rule.threshold:
        return None
    bound = "at least " if current is None or before is None else ""
    direction = "more" if pct > 0 else "fewer"
    return Finding(
        rule,
        f"{bound}{abs(pct)} % {direction} visitors than a week earlier",
        f"{_count(current, k)} in the last hour against {_count(before, k)} in the same hour a week earlier: "
        f"{bound}{abs(pct)} % {direction} (alert at {rule.threshold} %)",
    )


Sender = Callable[[Settings, list[EmailMessage]], int]


def message(settings: Settings, finding: Finding, now: dt.datetime, nth: int) -> EmailMessage:
    rule = finding.rule
    msg = EmailMessage()
    msg["Subject"] = f"Traffic alert: {rule.site}: {finding.summary}"
    msg["From"] = settings.report_from
    msg["To"] = ", ".join(rule.recipients)
    msg["Date"] = formatdate(now.timestamp(), usegmt=True)
    msg["Message-ID"] = make_msgid(domain=settings.report_from.rpartition("@")[2] or None)
    msg.set_content(
        f"{rule.site}, {now:%Y-%m-%d %H:%M} UTC: {finding.text}.\n\n"
        f"Rule: {rule.describe(settings.k_anonymity)}. This is alert {nth} of at most {MAX_PER_DAY} for this rule "
        'today (UTC). Counts under the k-anonymity threshold are given as "fewer than K".\n'
        "Rules are set by the dashboards' administrators (Admin > Alerts).\n"
    )
    return msg


class AlertChecker:
    """Checks every rule at most once a minute; the clock is the caller's (tests inject one)."""

    def __init__(self, settings: Settings, querier: Querier | None = None, send: Sender | None = None) -> None:
        from aggregator.mailer import send as smtp_send

        self.settings = settings
        self._querier = querier
        self._send = send or smtp_send
        self._last: dt.datetime | None = None

    @property
    def querier(self) -> Querier:
        if self._querier is None:
            self._querier = Querier(self.settings)
        return self._querier

    def maybe_check(self, now: dt.datetime) -> int:
        if self._last is not None and (now - self._last).total_seconds() < CHECK_SECONDS:
            return 0
        self._last = now
        return self.check(now)

    def check(self, now: dt.datetime) -> int:
        """Evaluate every rule; mail those that started to hold (within the daily cap). Returns mails sent."""
        data_dir = self.settings.data_dir
        rules = read_rules(data_dir)
        state = read_state(data_dir)
        today = now.astimezone(dt.UTC).date().isoformat()
        fresh: dict[str, dict[str, Any]] = {}
        mails: list[tuple[str, EmailMessage]] = []
        for rule in rules:
            key = str(rule.id)
            entry = dict(state.get(key, {}))
            if entry.get("day") != today:
                entry.update(day=today, sent=0)
            finding = evaluate(self.querier, rule, now)
            if finding is not None and not entry.get("active") and int(entry.get("sent", 0)) < MAX_PER_DAY:
                mails.append((key, message(self.settings, finding, now, int(entry.get("sent", 0)) + 1)))
            entry["active"] = finding is not None
            fresh[key] = entry
        sent = 0
        if mails and not self.settings.smtp_host:
            log.warning("alerts: %d alert(s) not sent: ANALYTICS_SMTP_HOST is empty", len(mails))
        elif mails:
            sent = self._send(self.settings, [m for _, m in mails])
            for key, _ in mails:
                fresh[key]["sent"] = int(fresh[key].get("sent", 0)) + 1
                fresh[key]["last_sent"] = now.astimezone(dt.UTC).isoformat(timespec="seconds")
        if fresh != state:
            write_json(data_dir / STATE_FILE, {"version": VERSION, "rules": fresh})
        return sent
