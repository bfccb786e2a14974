"""The report as one self-contained HTML page: inline CSS, inline SVG, no external resource.

Every value that came from traffic (paths, sources, ISP names…) is attacker
controlled (PRIVACY.md rule 11) and goes through :func:`html.escape`; nothing
is inserted unescaped except the fixed markup of this module. The page loads
nothing (no script, font, image or stylesheet URL), so it opens offline and
from an e-mail attachment; the one link is the ISP data attribution.
"""

from __future__ import annotations

from html import escape

from aggregator import fmt
from aggregator.charts import CSS as CHART_CSS
from aggregator.charts import Marker, legend, responsive_chart
from aggregator.metrics import GOAL_METRICS, Number
from aggregator.report import COMPARISON_NOTE, VISITORS_NOTE, Breakdown, Compared, Kpi, Report, other_note
from aggregator.report_goals import GOAL_HEADINGS, FunnelSummary, GoalSection

DBIP_ATTRIBUTION = (
    '<p class="attribution">ISP data: <a href="https://db-ip.com">DB-IP.com</a>, RouteViews, NRO (CC BY 4.0)</p>'
)

#: Column headings short enough for a phone; the full name is the cell's title.
HEADINGS = {
    "visitors": "visitors",
    "visits": "visits",
    "pageviews": "views",
    "bounce_rate": "bounce",
    "visit_duration": "duration",
    "time_on_page": "time on page",
    "scroll_depth": "scroll",
}

_CSS = (
    """
:root { --fg: #1d2433; --muted: #5b6476; --line: #d9dee8; --accent: #1f5fbf; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1000px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; overflow-wrap: anywhere; } h2 { font-size: 17px; margin: 28px 0 8px; }
.muted, .note, .attribution { color: var(--muted); font-size: 12px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 10px; }
.kpi { border: 1px solid var(--line); border-radius: 6px; padding: 10px; min-width: 0; }
.kpi .v { font-size: 20px; font-weight: 600; } .kpi .l { color: var(--muted); font-size: 12px; }
.up { color: #137a3a; } .down { color: #b3261e; }
table { border-collapse: collapse; width: 100%; font-size: 13px; table-layout: fixed; }
th, td { text-align: right; padding: 4px 6px; border-bottom: 1px solid var(--line); overflow-wrap: break-word; }
th { font-weight: 600; font-size: 12px; overflow-wrap: normal; hyphens: auto; }
th:first-child, td:first-child { text-align: left; width: 32%; hyphens: auto; }
tr.other td { font-style: italic; color: var(--muted); }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 0 24px; }
.grid > section { min-width: 0; }
ul.notes { padding-left: 1.2em; }
@media (max-width: 700px) { .grid { grid-template-columns: 1fr; } }
@media (max-width: 480px) {
  body { padding: 10px; } table { font-size: 12px; } th, td { padding: 3px 2px; }
  th { font-size: 11px; } th:first-child, td:first-child { width: 28%; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  section, .kpi, tr { break-inside: avoid; }
  .grid { grid-template-columns: 1fr 1fr; }
  a { color: inherit; text-decoration: none; }
  a[href]::after { content: " (" attr(href) ")"; font-size: 9pt; }
}
"""
    + CHART_CSS
)


NO_DATA = "no data to compare"
#: The comparison columns' labels, short enough for a table cell on a phone.
SHORT = {"vs previous day": "day before", "vs same weekday a week earlier": "week before"}


def fmt_change(metric: str, value: Number | None, compared: Compared | None = None) -> tuple[str, str]:
    """(text, css class); a higher bounce rate is bad news, so its colours are reversed.

    A comparison period without visits has no change: said in words, never as a percentage.
    """
    if compared is not None and not compared.visits:
        return NO_DATA, ""
    if value is None:
        return "n/a", ""
    good = value < 0 if metric == "bounce_rate" else value > 0
    css = "" if value == 0 else ("up" if good else "down")
    return fmt.change(metric, value), css


def _kpi(kpi: Kpi, compared: tuple[Compared, ...]) -> str:
    changes = []
    for c in compared:
        text, css = fmt_change(kpi.metric, kpi.change[c.key], c)
        changes.append(f'<div class="l"><span class="{css}">{escape(text)}</span> {escape(c.label)}</div>')
    return (
        f'<div class="kpi"><div class="l">{escape(kpi.label)}</div>'
        f'<div class="v">{escape(fmt.metric(kpi.metric, kpi.value, exact=True))}</div>{"".join(changes)}</div>'
    )


def charts_html(report: Report) -> str:
    """Visitors and pageviews, each on its own axis, with the first comparison period as a dashed line."""
    first = report.comparisons[0]
    comparison = f"{first.label.removeprefix('vs ')} ({first.name})"
    dim = report.series_dimension
    # Notes are per date: on an hourly chart of one day they are listed, not drawn.
    markers = [] if dim == "time:hour" else [Marker(a.day.isoformat(), a.text) for a in report.annotations]
    out = []
    for key, name, pts in (
        ("visitors", "Visitors", report.visitors_chart),
        ("pageviews", "Pageviews", report.pageviews_chart),
    ):
        title = f"{name} per {'hour (UTC)' if dim == 'time:hour' else 'day'}, {report.period.title}"
        out.append(f"<h3>{escape(name)}</h3>")
        out.append(
            responsive_chart(
                pts,
                title=title,
                fmt=lambda v: f"{int(v):,}",
                dimension=dim,
                series=name,
                comparison=comparison,
                markers=markers,
                chart_id=f"chart-{key}",
            )
        )
    out.append(legend("this period", comparison, partial=False, gaps=None, markers=bool(markers)))
    return "".join(out)


def breakdown_table(b: Breakdown, top: int, k: int) -> str:
    named = [r for r in b.rows if not r.is_other]
    other = [r for r in b.rows if r.is_other]
    head = "".join(
        f'<th title="{escape(m.replace("_", " "))}">{escape(HEADINGS.get(m, m.replace("_", " ")))}</th>'
        for m in b.spec.metrics
    )
    body = []
    for r in named[:top] + other:
        cells = "".join(
            f"<td>{escape(fmt.metric(m, v, exact=True))}</td>" for m, v in zip(b.spec.metrics, r.metrics, strict=True)
        )
        css = ' class="other"' if r.is_other else ""
        body.append(f"<tr{css}><td>{escape(r.value)}</td>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(b.spec.metrics) + 1}">no rows with at least {k} people</td></tr>')
    notes = []
    if len(named) > top:
        notes.append(f"{len(named) - top} more row(s) in {b.spec.key}.csv.")
    if b.folded_rows:
        notes.append(f"{b.folded_rows} row(s) under {k} people folded into (other)")
        if b.other_suppressed:
            notes.append("and left out: together still under the threshold.")
    note = f'<p class="note">{escape(" ".join(notes))}</p>' if notes else ""
    return (
        f"<section><h2>{escape(b.spec.title)}</h2><table><thead><tr><th>{escape(b.spec.column)}</th>{head}</tr>"
        f"</thead><tbody>{''.join(body)}</tbody></table>{note}"
        + (DBIP_ATTRIBUTION if b.spec.key == "isps" else "")
        + "</section>"
    )


def movers_table(report: Report) -> str:
    if not report.movers:
        return '<p class="note">No breakdown row changed among those shown in both periods.</p>'
    rows = "".join(
        f"<tr><td>{escape(m.breakdown)}: {escape(m.value)}</td><td>{escape(SHORT.get(m.comparison, m.comparison))}</td>"
        f"<td>{m.previous:,}</td><td>{m.visitors:,}</td><td>{m.delta:+,}</td></tr>"
        for m in report.movers
    )
    return (
        "<table><thead><tr><th>Row</th><th>Compared</th><th>before</th><th>visitors</th><th>change</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
        '<p class="note">Largest changes in visitors among rows with at least '
        f"{report.k} people in both periods.</p>"
    )


def goals_html(goals: GoalSection, compared: tuple[Compared, ...], k: int) -> str:
    """Each goal's unique and total conversions and conversion rate; per comparison the change of both."""
    head = "".join(f"<th>{escape(GOAL_HEADINGS[m])}</th>" for m in GOAL_METRICS)
    head += "".join(f'<th title="{escape(c.label)}">{escape(SHORT.get(c.label, c.label))}</th>' for c in compared)
    body = []
    for r in goals.rows:
        cells = "".join(
            f"<td>{escape(fmt.metric(m, v, exact=True))}</td>" for m, v in zip(GOAL_METRICS, r.values, strict=True)
        )
        for c in compared:
            change = r.change[c.key]
            if change is None:
                text = NO_DATA if not c.visits else "n/a"
            else:
                text = f"{fmt_change('visitors', change[0])[0]} / {fmt_change('conversion_rate', change[2])[0]}"
            cells += f"<td>{escape(text)}</td>"
        css = ' class="other"' if r.is_other else ""
        body.append(f"<tr{css}><td>{escape(r.name)}</td>{cells}</tr>")
    if not body:
        body.append(
            f'<tr><td colspan="{len(GOAL_METRICS) + len(compared) + 1}">no goal converted {k} people or more</td></tr>'
        )
    notes = [
        "Unique: visitors who converted; total: conversions; CR: unique conversions over all the site's visitors. "
        "Changes: unique conversions in percent, the conversion rate in percentage points (goals.csv has all)."
    ]
    if goals.folded_rows:
        notes.append(f"{goals.folded_rows} goal(s) under {k} people folded into (other)")
        if goals.other_suppressed:
            notes.append("and left out: together still under the threshold.")
    return (
        f"<section><h2>Conversions</h2><table><thead><tr><th>Goal</th>{head}</tr></thead>"
        f'<tbody>{"".join(body)}</tbody></table><p class="note">{escape(" ".join(notes))}</p></section>'
    )


def funnel_html(f: FunnelSummary, k: int) -> str:
    rows = []
    for i, s in enumerate(f.steps, 1):
        name = f"{i}. {s.name}"
        if s.visitors is None:
            rows.append(f'<tr class="other"><td>{escape(name)}</td><td colspan="4">fewer than {k} visitors</td></tr>')
            continue
        step_rate = "–" if i == 1 else fmt.percent(s.conversion_rate_step)
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{s.visitors:,}</td><td>{fmt.percent(s.conversion_rate)}</td>"
            f"<td>{step_rate}</td><td>{escape(fmt.metric('visit_duration', s.median_seconds))}</td></tr>"
        )
    return (
        f"<section><h3>{escape(f.name)}</h3><table><thead><tr><th>Step</th><th>visitors</th><th>from entry</th>"
        f"<th>from step before</th><th>median time</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def funnels_html(report: Report) -> str:
    if not report.funnels:
        return ""
    hidden = any(s.visitors is None for f in report.funnels for s in f.steps)
    note = (
        f"Steps in order within one visit. A step that would describe fewer than {report.k} people (or whose "
        "drop-off would) is not shown, nor are the steps after it. The figures are in funnels.csv."
        if hidden
        else "Steps in order within one visit. The figures are in funnels.csv."
    )
    tables = "".join(funnel_html(f, report.k) for f in report.funnels)
    return f'<section><h2>Funnels</h2><div class="grid">{tables}</div><p class="note">{escape(note)}</p></section>'


def annotations_html(report: Report) -> str:
    if not report.annotations:
        return ""
    items = "".join(f"<li><b>{a.day.isoformat()}</b>: {escape(a.text)}</li>" for a in report.annotations)
    return f'<section><h2>Annotations</h2><ul class="notes">{items}</ul></section>'


def _header(report: Report) -> str:
    comps = "; ".join(
        f"{c.label}: {c.name} ({c.days} day{'s' if c.days > 1 else ''}{', no visits' if not c.visits else ''})"
        for c in report.comparisons
    )
    return (
        f"<header><h1>{escape(report.site)}</h1><div class='muted'>{escape(report.period.title)} (UTC, "
        f"{report.period.days} day{'s' if report.period.days > 1 else ''}) · {escape(comps)}</div></header>"
    )


def render_html(report: Report, *, top: int = 10) -> str:
    kpis = "".join(_kpi(k, report.comparisons) for k in report.kpis)
    tables = [breakdown_table(b, top, report.k) for b in report.breakdowns]
    series_csv = "hourly.csv" if report.period.kind == "day" else "daily.csv"
    warnings = "".join(f'<p class="note">{escape(w)}</p>' for w in report.warnings)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.site)} · {escape(report.period.name)} · OneCloud Analytics</title>"
        f"<style>{_CSS}</style></head><body>"
        f"{_header(report)}"
        f'<section><h2>Key figures</h2><div class="kpis">{kpis}</div>'
        f'<p class="note">{escape(VISITORS_NOTE)} Time on page is engaged (visible, focused) time. '
        f"{escape(COMPARISON_NOTE)}</p></section>"
        f"<section><h2>{escape(report.series_title)}</h2>{charts_html(report)}"
        f'<p class="note">The figures are in {series_csv}. The site\'s unfiltered totals per bucket are exact.</p>'
        "</section>"
        f"{annotations_html(report)}"
        + (goals_html(report.goals, report.comparisons, report.k) if report.goals is not None else "")
        + funnels_html(report)
        + f"<section><h2>Notable changes</h2>{movers_table(report)}</section>"
        f"{tables[0]}<div class='grid'>{''.join(tables[1:])}</div>"
        f'<footer><p class="note">{escape(other_note(report.k))}</p>{warnings}'
        '<p class="note">Aggregates only: no individual visits or visitor keys are kept in this report.</p>'
        "</footer></body></html>\n"
    )


def render_email_html(report: Report, *, top: int = 5) -> str:
    """A short summary for the e-mail body (inline styles only: mail clients drop <style>)."""
    td = 'style="padding:3px 8px;border-bottom:1px solid #ddd;text-align:right"'
    rows = []
    for k in report.kpis:
        changes = "".join(
            f"<td {td}>{escape(fmt_change(k.metric, k.change[c.key], c)[0])}</td>" for c in report.comparisons
        )
        rows.append(
            f"<tr><td {td.replace('right', 'left')}>{escape(k.label)}</td><td {td}>"
            f"{escape(fmt.metric(k.metric, k.value, exact=True))}</td>{changes}</tr>"
        )
    head = "".join(f"<th {td}>{escape(c.label)}</th>" for c in report.comparisons)
    pages = next(b for b in report.breakdowns if b.spec.key == "pages")
    top_pages = "".join(
        f"<li>{escape(r.value)}: {int(r.metrics[0]):,} visitors</li>" for r in pages.rows[:top] if not r.is_other
    )
    movers = "".join(
        f"<li>{escape(m.breakdown)}: {escape(m.value)} {m.delta:+,} visitors ({escape(m.comparison)})</li>"
        for m in report.movers[:top]
    )
    goals = "".join(
        f"<li>{escape(g.name)}: {escape(fmt.metric('visitors', g.values[0], exact=True))} unique, "
        f"{escape(fmt.metric('conversion_rate', g.values[2], exact=True))}</li>"
        for g in (report.goals.rows if report.goals is not None else ())[:top]
        if not g.is_other
    )
    notes = "".join(f"<li>{a.day.isoformat()}: {escape(a.text)}</li>" for a in report.annotations)
    return (
        '<!DOCTYPE html>\n<html><body style="font-family:sans-serif;color:#1d2433">'
        f"<h2>{escape(report.site)}: {escape(report.period.title)}</h2>"
        f'<table style="border-collapse:collapse"><tr><th {td}></th><th {td}>value</th>{head}</tr>'
        f"{''.join(rows)}</table>"
        f"<h3>Top pages</h3><ul>{top_pages or '<li>none</li>'}</ul>"
        + (f"<h3>Conversions</h3><ul>{goals or '<li>none shown</li>'}</ul>" if report.goals is not None else "")
        + f"<h3>Notable changes</h3><ul>{movers or '<li>none</li>'}</ul>"
        + (f"<h3>Annotations</h3><ul>{notes}</ul>" if notes else "")
        + f'<p style="color:#5b6476;font-size:12px">{escape(VISITORS_NOTE)} {escape(other_note(report.k))} '
        "The full report (index.html) and its CSV files are attached.</p></body></html>\n"
    )
