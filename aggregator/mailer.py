"""Optional e-mail delivery of the nightly reports (standard library smtplib/email only).

One message per report: an HTML summary in the body (with a plain-text
alternative) and the report's files attached (``index.html``, ``summary.json``
and the CSVs). Everything in it comes from the report files, which hold
aggregates only: no day keys, no events (PRIVACY.md rules 2 and 5). Off while
``ANALYTICS_SMTP_HOST`` is empty.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from aggregator.fmt import metric
from aggregator.report import Report
from aggregator.report_html import render_email_html
from aggregator.settings import Settings

_TYPES = {".html": ("text", "html"), ".json": ("application", "json"), ".csv": ("text", "csv")}


def subject(report: Report) -> str:
    kind = {"day": "Daily", "week": "Weekly", "month": "Monthly"}[report.period.kind]
    return f"{kind} analytics report: {report.site}, {report.period.title}"


def plain_text(report: Report) -> str:
    lines = [subject(report), ""]
    lines += [f"{k.label}: {metric(k.metric, k.value, exact=True)}" for k in report.kpis]
    lines += ["", "The full report (index.html) and its CSV files are attached."]
    return "\n".join(lines) + "\n"


def build_message(settings: Settings, report: Report, files: list[Path]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject(report)
    msg["From"] = settings.report_from
    msg["To"] = ", ".join(settings.report_to)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=settings.report_from.rpartition("@")[2] or None)
    msg.set_content(plain_text(report))
    msg.add_alternative(render_email_html(report), subtype="html")
    for path in sorted(files, key=lambda p: (p.name != "index.html", p.name)):
        maintype, subtype = _TYPES.get(path.suffix, ("application", "octet-stream"))
        if maintype == "text":  # declared UTF-8, so "·" and non-ASCII page names survive
            msg.add_attachment(path.read_text("utf-8"), subtype=subtype, charset="utf-8", filename=path.name)
        else:
            msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return msg


def send(settings: Settings, messages: list[EmailMessage]) -> int:
    """Send over one SMTP connection; raises (smtplib.SMTPException, OSError) on failure."""
    if not messages:
        return 0
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=60) as smtp:
        smtp.ehlo()
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        for msg in messages:
            smtp.send_message(msg)
    return len(messages)
