"""What the collector serves to browsers: the beacon script, the opt-out page, the transparency page.

The pages are public and attacker-reachable: every value shown is escaped (the
browser and OS names come from the User-Agent header, which anyone can write),
no external resource is loaded, and a strict Content-Security-Policy says so.
``/privacy`` derives the visitor's record live from the request and stores
nothing; it is ``no-store`` so no shared cache can hand one visitor's network
name to another.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from collector.clientip import ClientAddress
from collector.devices import client_hints
from collector.isp import ATTRIBUTION, ATTRIBUTION_URL
from collector.pipeline import Pipeline
from collector.schema import INVENTORY
from collector.settings import Settings

# The client hints the pipeline reads, in client_hints' order: the page shows the same record.
_HINT_HEADERS = ("sec-ch-ua-platform", "sec-ch-ua-mobile", "sec-ch-ua")

STATIC = Path(__file__).resolve().parent / "static"
OPT_OUT_KEY = "onecloud_ignore"

#: Unversioned script URLs are re-checked daily; ``?v=<version>`` URLs never change.
SCRIPT_MAX_AGE = 86400
IMMUTABLE_MAX_AGE = 31536000

NEVER_KEPT = (
    "your IP address, in any form (it is used during the request to look up your network, then forgotten)",
    "your browser's full identification string (User-Agent)",
    "cookies: none are set, none are read",
    "query strings and fragments of page addresses (except campaign tags such as utm_source)",
    "anything you type into forms",
    "your location: no country, no city",
)


@dataclass(frozen=True, slots=True)
class Asset:
    """A static file held in memory, with its gzip form and a content version."""

    body: bytes
    gzipped: bytes
    version: str
    media_type: str

    @classmethod
    def load(cls, name: str, media_type: str) -> Asset:
        body = (STATIC / name).read_bytes()
        # mtime=0: the same bytes give the same gzip, on every worker and every host.
        gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        return cls(body, gzipped, hashlib.sha256(body).hexdigest()[:16], media_type)

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip()
            if not q.startswith("q="):
                return True
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
    return False


def asset_response(request: Request, asset: Asset) -> Response:
    versioned = request.query_params.get("v") == asset.version
    max_age = f"max-age={IMMUTABLE_MAX_AGE}, immutable" if versioned else f"max-age={SCRIPT_MAX_AGE}"
    headers = {
        "Cache-Control": f"public, {max_age}",
        "ETag": asset.etag,
        "Vary": "Accept-Encoding",
        # Any site may load the script (also with crossorigin/SRI, and under COEP).
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    inm = request.headers.get("if-none-match", "")
    if asset.etag in (t.strip().removeprefix("W/") for t in inm.split(",")):
        return Response(status_code=304, headers=headers)
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


_CSS = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:44em;margin:2em auto;padding:0 1em;color:#222}"
    "h1{font-size:1.6em}table{border-collapse:collapse;width:100%}"
    "th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}"
    "th{width:30%}th,td{overflow-wrap:anywhere}button{font:inherit;padding:.4em 1em;margin-right:.5em}"
    "@media (max-width:480px){body{font-size:14px;margin:1em auto}}"
    ".note{background:#f4f4f4;padding:.6em 1em}code{background:#f4f4f4}"
)
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()


def _page_headers(script: bool) -> dict[str, str]:
    csp = (
        "default-src 'none'; "
        f"style-src 'sha256-{_CSS_HASH}'; "
        + ("script-src 'self'; " if script else "")
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        # The pages depend on who asks (network, browser): never cached, never shared.
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def _document(title: str, body: str, script: str | None = None) -> str:
    tag = f'<script src="{escape(script)}"></script>' if script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{body}{tag}</body></html>"
    )


_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _site_origin(site: str, referer: str | None, local: bool = False) -> str:
    """Where the opt-out link for ``site`` points: the referring page's origin when it is
    that site (keeps its scheme and port), else ``https://<site>``.

    ``local`` (ANALYTICS_ALLOW_LOCALHOST, for local development such as ``make run``, whose
    demo site is served from 127.0.0.1): a page on a loopback address stands for the site, as
    the beacon counts such pages for it too."""
    if referer:
        try:
            ref = urlsplit(referer)
            host = (ref.hostname or "").lower()
        except ValueError:
            host = ""
        same = host.removeprefix("www.") == site.lower().removeprefix("www.")
        loopback = local and (host in _LOOPBACK or host.startswith("127."))
        if host and (same or loopback) and ref.scheme in ("http", "https"):
            return f"{ref.scheme}://{ref.netloc.rpartition('@')[2]}"
    return f"https://{site}"


def render_opt_out(sites: tuple[str, ...], referer: str | None, gpc: bool, allow_localhost: bool = False) -> str:
    rows = []
    for site in sites:
        origin = escape(_site_origin(site, referer, allow_localhost), quote=True)
        rows.append(
            f'<tr><th>{escape(site)}</th><td><a href="{origin}/#{OPT_OUT_KEY}=true">Stop counting me</a> · '
            f'<a href="{origin}/#{OPT_OUT_KEY}=false">Count me again</a></td></tr>'
        )
    table = "".join(rows)
    gpc_note = (
        '<p class="note" id="gpc">Your browser sends <em>Global Privacy Control</em> right now: '
        "none of its visits are counted, whatever you choose below.</p>"
        if gpc
        else ""
    )
    body = f"""<h1>Opt out of OneCloud's visit statistics</h1>
<p>OneCloud counts visits to its web sites to learn how they are used. For each page you view we keep:
the page's address without anything after <code>?</code> or <code>#</code>, the site you came from,
your browser and operating system (name and major version), whether you use a desktop, phone or tablet,
the name and number of your Internet provider's network, and how long the page was in front of you.
We never keep your IP address, your browser's full identification string, cookies or your location.
You are counted once per day with a number that changes every day and cannot be linked across days.
<a href="/privacy">See exactly what a visit from this browser records.</a></p>
{gpc_note}
<h2>Stop counting my visits</h2>
<p>Your choice is kept in your browser, for one site at a time: a setting named <code>{OPT_OUT_KEY}</code>
in that site's local storage. It is not a cookie and holds nothing about you. Clearing the site's data
in your browser removes it, and your visits are counted again.</p>
<table>{table}</table>
<p>Each link opens the site's home page and records your choice there.</p>
<h2>On this address</h2>
<p id="status">Turn on JavaScript to change the setting for this address.</p>
<p><button id="opt-out" type="button">Opt out</button><button id="opt-in" type="button">Opt back in</button></p>
<p>This applies to pages served from this same address (sites that serve the statistics script
from their own address, through a proxy).</p>
<p>Browsers that send <em>Global Privacy Control</em> are never counted.</p>"""
    return _document("Opt out of visit statistics", body, script="/js/opt-out.js")


def render_privacy(settings: Settings, record: dict[str, str], gpc: bool, bot: bool) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in record.items())
    inventory = "".join(
        f"<tr><th>{escape(f.name)}</th><td>{escape(f.kept_as.replace('`', ''))}"
        f"{'' if f.name != 'network_domain' or settings.network_domain else ' (switched off here: not kept)'}"
        f"</td><td>{escape(f.derived_from)}</td></tr>"
        for f in INVENTORY
    )
    never = "".join(f"<li>{escape(item)}</li>" for item in NEVER_KEPT)
    notes = []
    if gpc:
        notes.append("Your browser sends <em>Global Privacy Control</em>: nothing from it is recorded at all.")
    if bot:
        notes.append("Your browser identifies itself as an automated client: its visits are not counted.")
    note = "".join(f'<p class="note">{n}</p>' for n in notes)
    body = f"""<h1>What a visit from your browser records</h1>
<p>This is the record that a page view from this browser, on this network, produces right now.
It was worked out from this very request and has not been stored anywhere.</p>
{note}
<table id="record">{rows}</table>
<h2>Never kept</h2>
<ul id="never">{never}</ul>
<h2>How long</h2>
<p id="retention">De-identified page views are kept for {_count(settings.raw_retention_days, "day")};
daily totals for at most {_count(settings.aggregate_retention_months, "month")}. Then they are deleted.
Reports only show totals of at least a few visitors.</p>
<h2>Every stored field</h2>
<table><tr><th>field</th><td><b>kept as</b></td><td><b>derived from</b></td></tr>{inventory}</table>
<p><a href="/opt-out">Opt out</a></p>
<footer><p id="attribution">{escape(ATTRIBUTION)} — <a href="{ATTRIBUTION_URL}">db-ip.com</a></p></footer>"""
    return _document("What a visit records", body)


def _count(n: int, unit: str) -> str:
    # The retention settings (PRIVACY.md rule 6), the same variables the aggregator purges by.
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _version(name: str, version: str) -> str:
    return f"{name} {version}".strip() if name else "unknown"


def routes(settings: Settings, client: ClientAddress, pipeline: Callable[[], Pipeline]) -> list[Route]:
    # ``pipeline``: the collector's, asked per request (its lifespan builds it once the ISP database is open).
    script = Asset.load("script.js", "text/javascript; charset=utf-8")
    opt_out_js = Asset.load("opt-out.js", "text/javascript; charset=utf-8")

    async def beacon(request: Request) -> Response:
        return asset_response(request, script)

    async def opt_out_script(request: Request) -> Response:
        return asset_response(request, opt_out_js)

    async def opt_out(request: Request) -> Response:
        gpc = request.headers.get("sec-gpc") == "1"
        # The sites of the configuration in force (collector.siteconfig).
        html = render_opt_out(
            pipeline().allow.config.domains, request.headers.get("referer"), gpc, settings.allow_localhost
        )
        return HTMLResponse(html, headers=_page_headers(script=True))

    async def privacy(request: Request) -> Response:
        # Derived exactly as the pipeline derives an event, then dropped with the response.
        peer = request.client.host if request.client else None
        ip = client.resolve(peer, request.headers.get("x-forwarded-for"))
        isp = pipeline().isp_of(ip)
        h = request.headers
        hints = client_hints(*(h[k].encode() if k in h else None for k in _HINT_HEADERS))
        ua = pipeline().ua.parse(h.get("user-agent", ""), hints)
        del ip
        # "(none)": the word every other surface (dashboards, reports, CSV, Stats API) uses for an unknown network.
        network = f"{isp.org} (AS{isp.asn})" if isp.org and isp.asn else "(none): not in our network database"
        record = {
            "Internet provider": network,
            "Browser": _version(ua.browser, ua.browser_version),
            "Operating system": _version(ua.os, ua.os_version),
            "Device": ua.device,
            "Page": "the page's path only, without anything after ? or #",
            "Came from": "the referring site's name, or 'Direct / None'",
            "Time on page": "milliseconds the page was visible and focused, and how far you scrolled",
            "Counted as": "one visitor per day, with a 64-bit number from a random salt that is destroyed "
            "within 48 hours: it cannot be linked across days and is never shown to anyone",
        }
        if settings.network_domain:
            record["Network domain"] = "the registrable domain of your address's reverse DNS name"
        html = render_privacy(settings, record, request.headers.get("sec-gpc") == "1", ua.bot)
        return HTMLResponse(html, headers=_page_headers(script=False))

    return [
        Route("/js/script.js", beacon, methods=["GET", "HEAD"]),
        Route("/js/opt-out.js", opt_out_script, methods=["GET", "HEAD"]),
        Route("/opt-out", opt_out, methods=["GET", "HEAD"]),
        Route("/privacy", privacy, methods=["GET", "HEAD"]),
    ]
