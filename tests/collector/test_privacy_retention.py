"""The public privacy page states the retention the aggregator purges by, whatever it is set to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collector.app import create_app
from collector.settings import Settings
from onecloud_kit.settings import SettingsError
from tests.asgi import client_of_app


def _retention_paragraph(settings: Settings) -> str:
    with client_of_app(create_app(settings)) as client:
        html = client.get("/privacy").text
    found = re.search(r'<p id="retention">(.*?)</p>', html, re.S)
    assert found, html
    return " ".join(found.group(1).split())


@pytest.mark.parametrize(("days", "months"), [("30", "13"), ("1", "1"), ("400", "25")])
def test_the_page_states_the_configured_retention(tmp_path: Path, isp_db: Path, days: str, months: str) -> None:
    env = {
        "ANALYTICS_DATA_DIR": str(tmp_path),
        "ANALYTICS_ISP_DB": str(isp_db),
        "ANALYTICS_RAW_RETENTION_DAYS": days,
        "ANALYTICS_AGGREGATE_RETENTION_MONTHS": months,
    }
    text = _retention_paragraph(Settings.from_env(env))
    day_word = "day" if days == "1" else "days"
    month_word = "month" if months == "1" else "months"
    assert f"kept for {days} {day_word};" in text and f"at most {months} {month_word}." in text, text


def test_unset_the_page_states_the_defaults(tmp_path: Path, isp_db: Path) -> None:
    text = _retention_paragraph(Settings(data_dir=tmp_path, isp_db=isp_db))
    assert "kept for 90 days;" in text and "at most 25 months." in text, text


@pytest.mark.parametrize(
    "env",
    [{"ANALYTICS_AGGREGATE_RETENTION_MONTHS": "26"}, {"ANALYTICS_RAW_RETENTION_DAYS": "0"}],
)
def test_the_collector_refuses_what_the_aggregator_refuses(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=next(iter(env))):
        Settings.from_env(env)
