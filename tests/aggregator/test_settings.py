from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.settings import Settings
from onecloud_kit.settings import SettingsError, describe

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_environment() -> None:
    s = Settings.from_env({})
    assert (s.raw_retention_days, s.aggregate_retention_months, s.k_anonymity) == (90, 25, 5)
    assert s.sealed_dir == Path("var/spool/sealed") and s.lake_dir == Path("var/lake")
    s = Settings.from_env({"ANALYTICS_DATA_DIR": "/srv/a", "ANALYTICS_K_ANONYMITY": "10"})
    assert s.lake_dir == Path("/srv/a/lake") and s.k_anonymity == 10


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"ANALYTICS_AGGREGATE_RETENTION_MONTHS": "26"}, "AGGREGATE_RETENTION_MONTHS"),
        ({"ANALYTICS_K_ANONYMITY": "0"}, "K_ANONYMITY"),
        ({"ANALYTICS_RAW_RETENTION_DAYS": "x"}, "RAW_RETENTION_DAYS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env(env)


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    for var, _, _ in describe(Settings):
        assert f"\n{var}=" in text, var
