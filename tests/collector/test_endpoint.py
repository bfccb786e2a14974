"""``/api/event`` in-process (the app through httpx): CORS, methods, drop reasons, other paths still Starlette's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from collector.app import CollectorApp, create_app
from collector.settings import Settings
from collector.siteconfig import from_dict, load, save
from tests.conftest import CHROME_UA

SITE = "www.onecloud.example"
OTHER = "b.onecloud.example"
BODY = json.dumps({"n": "pageview", "u": f"https://{SITE}/", "d": SITE}).encode()
HEADERS = {"Content-Type": "text/plain", "User-Agent": CHROME_UA}

Scenario = Callable[[httpx.AsyncClient, CollectorApp], Awaitable[None]]


def run(tmp_path: Path, isp_db: Path, scenario: Scenario) -> None:
    settings = Settings(data_dir=tmp_path / "data", sites=(SITE,), isp_db=isp_db)

    async def main() -> None:
        app = create_app(settings)
        assert isinstance(app, CollectorApp)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4711))
            async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
                await scenario(client, app)

    asyncio.run(main())


def test_cors_answers_the_configured_sites_only(tmp_path: Path, isp_db: Path) -> None:
    async def scenario(client: httpx.AsyncClient, app: CollectorApp) -> None:
        for origin in (f"https://{SITE}", f"http://{SITE}", "https://onecloud.example"):
            r = await client.post("/api/event", content=BODY, headers={**HEADERS, "Origin": origin})
            assert r.status_code == 202 and r.text == "ok"
            assert r.headers["access-control-allow-origin"] == origin and r.headers["vary"] == "Origin"
        for origin in ("https://evil.example", f"https://{SITE}.evil.example", "null"):
            r = await client.post("/api/event", content=BODY, headers={**HEADERS, "Origin": origin})
            assert r.status_code == 202 and "access-control-allow-origin" not in r.headers
        r = await client.post("/api/event", content=BODY, headers=HEADERS)
        assert r.status_code == 202 and "access-control-allow-origin" not in r.headers

        # A dropped event and an error answer carry the same CORS headers (the page can read why).
        bot = await client.post("/api/event", content=BODY, headers={**HEADERS, "User-Agent": "curl/8.5.0",
                                                                      "Origin": f"https://{SITE}"})  # fmt: skip
        assert bot.headers["x-drop-reason"] == "bot" and bot.headers["access-control-allow-origin"] == f"https://{SITE}"
        bad = await client.post("/api/event", content=b"{", headers={**HEADERS, "Origin": f"https://{SITE}"})
        assert bad.status_code == 400 and bad.headers["access-control-allow-origin"] == f"https://{SITE}"

        pre = await client.options("/api/event", headers={"Origin": f"https://{SITE}"})
        assert pre.status_code == 204 and pre.headers["access-control-allow-methods"] == "POST"
        assert pre.headers["access-control-allow-headers"] == "Content-Type"
        other = await client.options("/api/event", headers={"Origin": "https://evil.example"})
        assert other.status_code == 204 and "access-control-allow-origin" not in other.headers

    run(tmp_path, isp_db, scenario)


def test_a_site_added_to_the_configuration_gets_cors_without_a_restart(tmp_path: Path, isp_db: Path) -> None:
    async def scenario(client: httpx.AsyncClient, app: CollectorApp) -> None:
        origin = {"Origin": f"https://{OTHER}"}
        r = await client.post("/api/event", content=BODY, headers={**HEADERS, **origin})
        assert "access-control-allow-origin" not in r.headers  # answered once: its header list is built
        c = app.state.collector
        config = load(c.siteconfig.path)
        save(from_dict({"sites": [*config.to_dict()["sites"], {"domain": OTHER}]}), c.siteconfig.path)
        assert c.siteconfig.check()
        r = await client.post("/api/event", content=BODY, headers={**HEADERS, **origin})
        assert r.headers["access-control-allow-origin"] == f"https://{OTHER}"

    run(tmp_path, isp_db, scenario)


def test_methods_and_other_paths(tmp_path: Path, isp_db: Path) -> None:
    async def scenario(client: httpx.AsyncClient, app: CollectorApp) -> None:
        r = await client.get("/api/event")
        assert r.status_code == 405 and r.headers["allow"] == "POST, OPTIONS" and r.json()["field"] == "method"
        assert (await client.get("/healthz")).text == "ok"
        assert (await client.get("/api/event/")).status_code == 404  # only the exact path is the endpoint
        assert (await client.post("/api/event", content=BODY, headers=HEADERS)).status_code == 202
        metrics = (await client.get("/metrics")).text
        assert "analytics_events_received_total 1.0" in metrics and "analytics_events_accepted_total 1.0" in metrics

    run(tmp_path, isp_db, scenario)
