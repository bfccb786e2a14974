"""The dashboards' settings: built once at the edge and passed down; every effective default is the declared one."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from aggregator.settings import Settings as AggregatorSettings
from dashboards.app import create_app
from dashboards.services import Services
from dashboards.settings import Settings
from onecloud_kit.settings import SettingsError, describe


def _services(settings: Settings, aggregator: AggregatorSettings) -> Services:
    """The app's services as its lifespan hands them to requests."""
    app = create_app(settings, aggregator=aggregator)

    async def enter() -> Services:
        async with app.router.lifespan_context(app) as state:
            svc: Services = state["svc"]  # type: ignore[index]
            return svc

    return asyncio.run(enter())


def test_the_aggregator_settings_given_are_the_ones_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The process environment says otherwise: the dashboards must not read it behind the caller's back.
    monkeypatch.setenv("ANALYTICS_K_ANONYMITY", "7")
    monkeypatch.setenv("ANALYTICS_RAW_RETENTION_DAYS", "30")
    aggregator = AggregatorSettings(data_dir=tmp_path, k_anonymity=3, raw_retention_days=45)
    svc = _services(Settings(data_dir=tmp_path), aggregator)
    assert (svc.queries.k_anonymity, svc.queries.raw_retention_days) == (3, 45)


def test_unset_the_pages_use_the_declared_staleness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    declared = {var: default for var, default, _ in describe(Settings)}
    monkeypatch.setenv("ANALYTICS_ROLLUP_MAX_STALE", "0")  # the aggregator's own: not the pages'
    settings = Settings.from_env({"ANALYTICS_DATA_DIR": str(tmp_path)})
    svc = _services(settings, AggregatorSettings.from_env({"ANALYTICS_DATA_DIR": str(tmp_path)}))
    assert svc.queries.page_max_stale == float(declared["ANALYTICS_DASHBOARDS_ROLLUP_MAX_STALE"]) == 120.0
    exact = dataclasses.replace(settings, dashboards_rollup_max_stale=0.0)
    assert _services(exact, AggregatorSettings(data_dir=tmp_path)).queries.page_max_stale == 0.0
    with pytest.raises(SettingsError, match="ANALYTICS_DASHBOARDS_ROLLUP_MAX_STALE"):
        Settings.from_env({"ANALYTICS_DASHBOARDS_ROLLUP_MAX_STALE": "-1"})


def test_the_aggregator_declares_what_its_queries_do_by_default() -> None:
    declared = {var: default for var, default, _ in describe(AggregatorSettings)}
    # The querier's default staleness when a caller does not choose (the nightly reports): exact.
    assert float(declared["ANALYTICS_ROLLUP_MAX_STALE"]) == AggregatorSettings.from_env({}).rollup_max_stale == 0.0
