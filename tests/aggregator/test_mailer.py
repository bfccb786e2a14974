"""Report e-mail against a real SMTP server (aiosmtpd) on a loopback port, with login."""

from __future__ import annotations

import email
import email.policy
import io
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from aggregator.nightly import EXIT_STEP_FAILED, run_nightly
from aggregator.settings import Settings
from aggregator.synth import Traffic, generate, write_segments
from onecloud_kit.settings import SettingsError
from tests.aggregator.test_report import DAY, HOSTILE_PATH, NOW, WWW, K, build_spool
from tests.conftest import free_port

TO = ("web-team@onecloud.example", "ops@onecloud.example")


@dataclass
class Inbox:
    received: list[tuple[str, list[str], bool, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpt = list(envelope.rcpt_tos)
        self.received.append((envelope.mail_from, rcpt, bool(session.authenticated), envelope.content))
        return "250 Message accepted for delivery"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"reports", b"s3cret")
    return AuthResult(success=ok)


def mail_settings(tmp_path: Path, port: int) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        duckdb_threads=2,
        k_anonymity=K,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_user="reports",
        smtp_password="s3cret",
        smtp_starttls=False,  # loopback test server without a certificate
        report_from="analytics@onecloud.example",
        report_to=TO,
    )


def text_of(msg: EmailMessage) -> str:
    parts = []
    for part in msg.walk():
        if not part.is_multipart():
            content = part.get_content()
            parts.append(content if isinstance(content, str) else content.decode())
    return "\n".join(parts)


@pytest.mark.slow
def test_reports_arrive_by_email_with_summary_and_attachments(tmp_path: Path) -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False)
    controller.start()
    try:
        settings = mail_settings(tmp_path, port)
        events = build_spool(settings)
        out = io.StringIO()
        rc = run_nightly(settings, DAY, NOW, out=out, err=out)
    finally:
        controller.stop()
    assert rc == 0, out.getvalue()
    assert "4 messages to 2 recipients via 127.0.0.1" in out.getvalue()
    assert len(inbox.received) == 4  # 2 sites x (day, ISO week)
    messages = {}
    for mail_from, rcpt, authenticated, raw in inbox.received:
        assert mail_from == "analytics@onecloud.example" and sorted(rcpt) == sorted(TO) and authenticated
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        messages[str(msg["Subject"])] = msg
    msg = messages[f"Daily analytics report: {WWW}, Sunday 2026-11-22"]
    assert f"Weekly analytics report: {WWW}, Week 2026-W47 (2026-11-16 to 2026-11-22)" in messages

    html_part = msg.get_body(("html",))
    assert html_part is not None
    body = html_part.get_content()
    assert "Visitors" in body and "Top pages" in body and "counted per UTC day" in body
    assert "&lt;script&gt;" in body and HOSTILE_PATH not in body  # escaped here too
    report_dir = settings.reports_dir / WWW / DAY.isoformat()
    attachments = {str(p.get_filename()): p for p in msg.iter_attachments()}
    assert set(attachments) == {p.name for p in report_dir.iterdir()}
    assert attachments["index.html"].get_content_type() == "text/html"
    for name in ("index.html", "pages.csv"):  # text parts travel with CRLF line ends
        sent = attachments[name].get_content().replace("\r\n", "\n")
        assert sent == (report_dir / name).read_bytes().decode().replace("\r\n", "\n")

    # Aggregates only: no day key (decimal or hex) and no event timestamp anywhere in the decoded mail.
    everything = "\n".join(text_of(m) for m in messages.values())
    for e in events:
        assert str(e.day_key) not in everything and f"{e.day_key:x}" not in everything
        assert str(e.ts) not in everything


def test_unreachable_smtp_server_fails_the_mail_step_only(tmp_path: Path) -> None:
    settings = mail_settings(tmp_path, free_port())  # nothing listens there
    write_segments(generate(Traffic(DAY, 1, {WWW: 8}, seed=9)), settings.sealed_dir)
    out, err = io.StringIO(), io.StringIO()
    assert run_nightly(settings, DAY, NOW, out=out, err=err) == EXIT_STEP_FAILED
    assert "mail     FAILED" in out.getvalue() and "reports  ok" in out.getvalue()
    assert "step mail failed: ConnectionRefusedError" in err.getvalue()
    assert (settings.reports_dir / WWW / DAY.isoformat() / "index.html").is_file()


def test_smtp_settings_are_validated() -> None:
    with pytest.raises(SettingsError, match="ANALYTICS_REPORT_TO"):
        Settings.from_env({"ANALYTICS_SMTP_HOST": "mail.example"})
    s = Settings.from_env({"ANALYTICS_SMTP_HOST": "mail.example", "ANALYTICS_REPORT_TO": "a@x.example, b@x.example"})
    assert s.report_to == ("a@x.example", "b@x.example") and s.smtp_starttls and s.smtp_port == 587
    with pytest.raises(SettingsError, match="ANALYTICS_SMTP_PORT"):
        Settings.from_env({"ANALYTICS_SMTP_PORT": "0"})
