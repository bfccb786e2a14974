"""Annotations: admins write them in the dashboards, everyone sees them on the chart, the nightly report lists them."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest

from aggregator.nightly import run_nightly
from aggregator.settings import Settings as AggregatorSettings
from tests.dashboards.conftest import DEMO, VIEWER, VIEWER_PASSWORD, audit_rows, copy_of, csrf_token
from tests.dashboards.inproc import Clock, client_of, log_in, running_app
from tests.dashboards.lakes import NOW


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, known_lake: Path) -> Path:
    return copy_of(known_lake, tmp_path_factory.mktemp("notes"))


@pytest.mark.slow
def test_admins_write_notes_everyone_sees_them_and_the_report_lists_them(data: Path) -> None:
    with running_app(data, Clock(NOW)) as app, client_of(app) as admin, client_of(app) as viewer:
        log_in(admin)
        log_in(viewer, VIEWER, VIEWER_PASSWORD)
        page = admin.get(f"/sites/{DEMO}/annotations").text
        token = csrf_token(page)
        for day, text in (("2026-11-17", "Newsletter <b>sent</b>"), ("2026-11-20", "Pricing page\tlaunch")):
            r = admin.post(f"/sites/{DEMO}/annotations", data={"day": day, "text": text, "csrf_token": token})
            assert r.status_code == 303
        # The file the nightly report reads (the aggregator never opens the dashboards' database).
        shared = json.loads((data / "annotations.json").read_text())
        assert shared == {
            "version": 1,
            "sites": {
                DEMO: [
                    {"date": "2026-11-17", "text": "Newsletter <b>sent</b>"},
                    {"date": "2026-11-20", "text": "Pricing page launch"},  # control characters removed
                ]
            },
        }
        # On the chart (a marker per note and size) and listed under it, escaped, for every user.
        html = viewer.get(f"/sites/{DEMO}", params={"period": "7d"}).text
        assert html.count('class="marker"') == 4 and "Newsletter &lt;b&gt;sent&lt;/b&gt;" in html
        assert re.search(r'data-label="2026-11-17"[^>]*data-note="Newsletter &lt;b&gt;sent&lt;/b&gt;"', html)
        assert "Add or remove annotations" not in html  # a viewer gets no admin link
        assert "Add or remove annotations" in admin.get(f"/sites/{DEMO}", params={"period": "7d"}).text
        # Viewers read the list but cannot write; bad input is refused with a reason.
        notes = viewer.get(f"/sites/{DEMO}/annotations").text
        assert "Pricing page launch" in notes and 'name="text"' not in notes
        r = viewer.post(f"/sites/{DEMO}/annotations", data={"day": "2026-11-18", "text": "x",
                                                              "csrf_token": csrf_token(notes)})  # fmt: skip
        assert r.status_code == 403
        for day, text, says in (("2026-13-01", "x", "YYYY-MM-DD"), ("2026-11-18", "x" * 201, "at most 200"),
                                ("2026-11-18", " \t ", "needs some text")):  # fmt: skip
            r = admin.post(f"/sites/{DEMO}/annotations", data={"day": day, "text": text, "csrf_token": token})
            assert r.status_code == 400 and says in r.text
        # The nightly report of that week lists the notes and draws them on its charts.
        settings = AggregatorSettings(data_dir=data, duckdb_threads=2, report_sites=(DEMO,))
        out = io.StringIO()
        assert (
            run_nightly(settings, dt.date(2026, 11, 22), NOW + dt.timedelta(days=1), out=out, err=out, mail=False) == 0
        )
        report = (data / "reports" / DEMO / "week-2026-W47" / "index.html").read_text()
        assert "<h2>Annotations</h2>" in report and "Newsletter &lt;b&gt;sent&lt;/b&gt;" in report
        assert report.count('class="marker"') == 2 * 2 * 2
        # Deleting one removes it from the file too; both changes are in the audit log.
        page = admin.get(f"/sites/{DEMO}/annotations").text
        first = re.search(r'action="(/sites/[^"]+/annotations/\d+/delete)"', page)
        assert first is not None
        assert admin.post(first.group(1), data={"csrf_token": token}).status_code == 303
        assert len(json.loads((data / "annotations.json").read_text())["sites"][DEMO]) == 1
    actions = [action for _, _, action, _ in audit_rows(data)]
    assert actions.count("annotation_add") == 2 and actions.count("annotation_delete") == 1
