"""One environment, one meaning: a variable several packages declare means the same in each."""

from __future__ import annotations

import pytest

from aggregator.settings import Settings as AggregatorSettings
from collector.settings import Settings as CollectorSettings
from dashboards.settings import Settings as DashboardsSettings
from onecloud_kit.settings import SettingsError, describe

PACKAGES = {"collector": CollectorSettings, "aggregator": AggregatorSettings, "dashboards": DashboardsSettings}


def test_a_variable_declared_twice_has_one_default() -> None:
    seen: dict[str, tuple[str, str]] = {}
    shared = set()
    for package, cls in PACKAGES.items():
        for var, default, _ in describe(cls):
            if var in seen:
                shared.add(var)
                assert seen[var][1] == default, f"{var}: {seen[var][0]} says {seen[var][1]!r}, {package} {default!r}"
            else:
                seen[var] = (package, default)
    # The ones that must agree for the product to keep its word: the data dir, and the retention the privacy
    # page states (collector) and the purge applies (aggregator).
    assert {"ANALYTICS_DATA_DIR", "ANALYTICS_RAW_RETENTION_DAYS", "ANALYTICS_AGGREGATE_RETENTION_MONTHS"} <= shared


def test_a_closed_set_setting_takes_its_words_and_names_them_when_refusing() -> None:
    assert CollectorSettings.from_env({"ANALYTICS_SALT_STORE": " file "}).salt_store == "file"
    with pytest.raises(SettingsError) as exc:
        CollectorSettings.from_env({"ANALYTICS_SALT_STORE": "redis"})
    assert str(exc.value) == "ANALYTICS_SALT_STORE: must be one of `file`, `postgres`, got 'redis'"
