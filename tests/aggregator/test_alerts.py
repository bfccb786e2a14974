"""Traffic alerts against a real SMTP server (aiosmtpd on loopback): rules from the dashboards' file, K applied,
at most two mails a day per rule, an injected clock; and once end to end through a running `ingest --follow`."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from aggregator.alerts import STATE_FILE, AlertChecker, Rule, read_rules, write_rules
from aggregator.ingest import Ingester
from aggregator.jsonfile import SharedFileError
from aggregator.query import Querier
from aggregator.settings import Settings
from aggregator.synth import write_segments
from collector.schema import Event
from dashboards.store import Store
from dashboards.users import Users
from tests.aggregator.conftest import ROOT
from tests.aggregator.test_mailer import Inbox
from tests.conftest import free_port, wait_until
from tests.dashboards.conftest import ADMIN, ADMIN_PASSWORD, csrf_token
from tests.dashboards.inproc import Clock, logged_in
from tests.events import make_event

SITE = "www.onecloud.example"
K = 5
DAY = dt.date(2026, 11, 22)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


def visitors(n: int, start: dt.datetime, key: int) -> list[Event]:
    """``n`` visitors with one pageview each within the hour after ``start``."""
    base = int(start.timestamp())
    return [make_event(site=SITE, ts=base + 60 + i * 30, day_key=key + i) for i in range(n)]


def traffic() -> list[Event]:
    week_ago = DAY - dt.timedelta(days=7)
    return [
        *visitors(12, at(DAY, 11), 1_000),  # 11:00-12:00: a spike
        *visitors(30, at(week_ago, 11), 2_000),  # the same hour a week earlier: more
        *visitors(12, at(DAY, 15), 3_000),  # 15:00-16:00: another spike (and none a week earlier)
        *visitors(12, at(DAY, 19), 4_000),  # 19:00-20:00: a third one
        *visitors(12, at(DAY + dt.timedelta(days=1), 11), 5_000),  # the next day
        *visitors(3, at(DAY, 22), 6_000),  # 22:00-23:00: a few, under K
    ]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def settings_for(data: Path, port: int) -> Settings:
    return Settings(
        data_dir=data,
        duckdb_threads=2,
        k_anonymity=K,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        report_from="analytics@onecloud.example",
        report_to=("web-team@onecloud.example",),
    )


@pytest.fixture
def lake(tmp_path: Path, inbox: tuple[Inbox, int]) -> Settings:
    settings = settings_for(tmp_path / "data", inbox[1])
    write_segments(traffic(), settings.sealed_dir)
    Ingester(settings).run_once()
    return settings


def mails(box: Inbox) -> list[EmailMessage]:
    out = []
    for _, _, _, raw in box.received:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def subject(msg: EmailMessage) -> str:
    return " ".join(str(msg["Subject"]).split())  # a folded header parses with its fold's space


def body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_at_most_two_mails_a_day_per_rule_when_the_condition_starts(lake: Settings, inbox: tuple) -> None:
    box, _ = inbox
    write_rules(lake.data_dir, [Rule(1, SITE, "above", 10, ("ops@onecloud.example",))])
    checker = AlertChecker(lake)
    sent = []
    for moment in (at(DAY, 12), at(DAY, 12, 5), at(DAY, 13, 30), at(DAY, 16), at(DAY, 17, 30), at(DAY, 20)):
        sent.append(checker.check(moment))
    # 12:00 starts to hold (mail), 12:05 still holds (none), 13:30 not, 16:00 again (mail), 20:00 again: capped.
    assert sent == [1, 0, 0, 1, 0, 0]
    got = mails(box)
    assert [subject(m) for m in got] == [f"Traffic alert: {SITE}: 12 visitors in the last hour"] * 2
    assert got[0]["To"] == "ops@onecloud.example" and "alert 1 of at most 2" in body(got[0])
    assert "alert 2 of at most 2" in body(got[1])
    # A restart neither forgets nor repeats: the state is in the data dir.
    assert AlertChecker(lake).check(at(DAY, 20, 1)) == 0
    state = json.loads((lake.data_dir / STATE_FILE).read_text())["rules"]["1"]
    assert state["sent"] == 2 and state["day"] == DAY.isoformat() and state["last_sent"] == "2026-11-22T16:00:00+00:00"
    # A new UTC day: the cap starts again.
    assert AlertChecker(lake).check(at(DAY, 21)) == 0  # not holding: resets "active"
    assert AlertChecker(lake).check(at(DAY + dt.timedelta(days=1), 12)) == 1


def test_counts_under_k_are_never_mailed_as_numbers(lake: Settings, inbox: tuple) -> None:
    box, _ = inbox
    write_rules(lake.data_dir, [Rule(1, SITE, "below", 8, ("ops@onecloud.example",))])
    checker = AlertChecker(lake)
    assert checker.check(at(DAY, 23)) == 1  # 3 visitors from 22:00: below 8, but said as "fewer than 5"
    (below,) = mails(box)
    assert subject(below) == f"Traffic alert: {SITE}: fewer than 5 visitors in the last hour"
    assert "3 visitor" not in body(below)
    # The change rule: 12 against 30 a week earlier is 60 % fewer (periods.change, as everywhere).
    write_rules(lake.data_dir, [Rule(2, SITE, "change", 50, ("ops@onecloud.example",))])
    assert AlertChecker(lake).check(at(DAY, 12)) == 1
    change = mails(box)[-1]
    assert "12 visitors in the last hour against 30 visitors in the same hour a week earlier: 60 % fewer" in body(
        change
    )
    # Two quiet hours (both under K): nothing can be said, so nothing holds.
    assert AlertChecker(lake).check(at(DAY, 13, 30)) == 0
    # Against an hour under K (none at 15:00 a week earlier) the change is the bound K allows, never a small count.
    assert AlertChecker(lake).check(at(DAY, 16)) == 1
    bound = mails(box)[-1]
    assert "against fewer than 5 visitors in the same hour a week earlier: at least 200 % more" in body(bound)


def test_without_an_smtp_host_nothing_is_sent_or_counted(lake: Settings, inbox: tuple) -> None:
    import dataclasses

    write_rules(lake.data_dir, [Rule(1, SITE, "above", 10, ("ops@onecloud.example",))])
    quiet = dataclasses.replace(lake, smtp_host="")
    assert AlertChecker(quiet).check(at(DAY, 12)) == 0
    assert json.loads((lake.data_dir / STATE_FILE).read_text())["rules"]["1"]["sent"] == 0
    assert inbox[0].received == []


def test_a_broken_rules_file_is_an_error_not_a_silence(tmp_path: Path) -> None:
    (tmp_path / "alerts.json").write_text('{"version": 1, "rules": [{"id": 1, "site": "x", "kind": "sideways"}]}')
    with pytest.raises(SharedFileError):
        read_rules(tmp_path)
    (tmp_path / "alerts.json").write_text("not json")
    with pytest.raises(SharedFileError, match="not valid JSON"):
        read_rules(tmp_path)


def test_rules_made_in_the_dashboards_mail_through_the_checker(lake: Settings, inbox: tuple) -> None:
    box, _ = inbox
    Users(Store(lake.data_dir / "dashboards.sqlite3")).add(ADMIN, ADMIN_PASSWORD, "admin")
    with logged_in(lake.data_dir, Clock(at(DAY, 12))) as admin:  # www.onecloud.example is in its allowlist
        token = csrf_token(admin.get("/admin/alerts").text)
        form = {"site": "www.onecloud.example", "kind": "above", "threshold": "3", "recipients": "a@x.example"}
        r = admin.post("/admin/alerts", data={**form, "csrf_token": token})
        assert r.status_code == 400 and "at least 5 (the k-anonymity threshold)" in r.text
        form |= {"threshold": "10", "recipients": "web@onecloud.example, ops@onecloud.example"}
        assert admin.post("/admin/alerts", data={**form, "csrf_token": token}).status_code == 303
        assert read_rules(lake.data_dir) == [
            Rule(1, SITE, "above", 10, ("web@onecloud.example", "ops@onecloud.example"))
        ]
        assert AlertChecker(lake, Querier(lake)).check(at(DAY, 12)) == 1
        page = admin.get("/admin/alerts").text
        assert "1 of 2" in page and "2026-11-22T12:00:00+00:00" in page
    (msg,) = mails(box)
    assert msg["To"] == "web@onecloud.example, ops@onecloud.example"


def test_a_running_ingest_follow_sends_an_alert(tmp_path: Path, inbox: tuple) -> None:
    box, port = inbox
    settings = settings_for(tmp_path / "data", port)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    write_segments(visitors(8, now - dt.timedelta(minutes=50), 9_000), settings.sealed_dir)
    write_rules(settings.data_dir, [Rule(7, SITE, "above", 5, ("ops@onecloud.example",))])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env |= {
        "ANALYTICS_DATA_DIR": str(settings.data_dir),
        "ANALYTICS_DUCKDB_THREADS": "2",
        "ANALYTICS_SMTP_HOST": "127.0.0.1",
        "ANALYTICS_SMTP_PORT": str(port),
        "ANALYTICS_SMTP_STARTTLS": "0",
        "ANALYTICS_REPORT_TO": "web@onecloud.example",
        "ANALYTICS_INGEST_INTERVAL": "0.2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "ingest", "--follow"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines: list[str] = []
    # The pass reports after its mail went out: read its lines as they come, and stop the process only once
    # both the mail and the report are in (stopping it on the mail alone can cut the report off).
    reader = threading.Thread(target=lambda: lines.extend(ln.decode() for ln in proc.stdout or ()), daemon=True)
    reader.start()
    try:

        def sent() -> bool:
            assert proc.poll() is None, "".join(lines)
            return bool(box.received) and any('"alerts_sent": 1' in ln for ln in lines)

        wait_until("the alert mail and the ingest pass reporting it", sent, timeout=60, poll=0.1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    (msg,) = mails(box)
    assert subject(msg) == f"Traffic alert: {SITE}: 8 visitors in the last hour"
