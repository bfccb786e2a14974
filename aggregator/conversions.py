"""The conversions table: each day's hits that convert a goal of the site, merged per (visit part, goal).

Built with the day's per-visit tables (aggregator/rollup.py) for the goals the site configuration defines at
that time, and read by the Goals panel and by funnels (aggregator/goalscope.py, aggregator/funnels.py) when
nothing filters the hits. A row is a hits row (aggregator/tables.py) of one visit part and one goal, with
its events merged: ``n`` events, their first and last second and ``ts_more`` (every second, when there are
more than two), the visit columns the counts read (bounce, duration, profile, row counts) and ``vkey`` (one
exact BIGINT per visit). So:

* a goal's page pattern is matched once per day and distinct path when the table is built, not per query;
* a day key with one visit row (``key_rows`` 1, most of them) has one row per goal it converts: its unique
  conversions per (day, goal) are a count of rows, not a grouping of every converting hit by day key;
* a funnel step's rows are one per visit part, not one per hit.

One file per day and goal (a funnel step reads only its goal's; a goal without conversions that day gets
an empty one), named after the set of goal definitions it was built for (:func:`goal_set_key`): goals are
configuration. A day whose files were built for another set (a goal added, removed or changed since), or
lack one, reads its goal hits as they are at query time instead, and the next ``aggregator rollup`` (or
nightly run) rebuilds its files from the day's hits table alone. A goal is keyed by its definition
(:func:`goal_id`), not its name: two goals with one definition read the same rows.

Derived records (PRIVACY.md): the hits' own fields, kept and purged with them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from duckdb import DuckDBPyConnection as Connection

from aggregator.db import connect
from aggregator.filters import GoalLike
from aggregator.lake import Lake, publish, site_dir_name, sql_path
from aggregator.sessions import OWN_COLUMNS
from aggregator.settings import Settings
from aggregator.tables import VISIT_METRIC_COLUMNS, code
from collector.siteconfig import SiteConfigError, load

log = logging.getLogger(__name__)

#: Bumped when the conversions table's columns change: older files stop matching and are rebuilt.
CONVERSIONS_FORMAT = 2  # 2: vkey

#: One BIGINT per visit, exact: the day (days since 1970) in the high bits, the visit's rank among the day's
#: visits (by day key and number) in the low 32: a funnel joins its steps on one column, not three.
VKEY_SQL = "(CAST(epoch(day) // 86400 AS BIGINT) << 32) | dense_rank() OVER (PARTITION BY day ORDER BY day_key, vno)"

_OWN = tuple(code(f"visit:{c}") for c in OWN_COLUMNS)


def goal_definition(g: GoalLike) -> str:
    """What decides which events convert a goal (not its name): kind, pattern or event name, property values."""
    if g.kind == "page":
        return json.dumps(["page", g.page_regex])
    return json.dumps(["event", g.event, sorted(g.props.items())])


def goal_id(g: GoalLike) -> int:
    """A signed 64-bit id of the goal's definition (the rows' ``gdef``), the same in every process."""
    digest = hashlib.sha256(goal_definition(g).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def goal_hex(gid: int) -> str:
    """A goal id as the 16 hex digits of its file name."""
    return f"{gid & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def goal_ids(goals: Sequence[GoalLike]) -> list[int]:
    """The distinct definitions' ids of ``goals`` (two goals with one definition share a file)."""
    return sorted({goal_id(g) for g in goals})


def file_name(fingerprint: str, goal_set: str, gid: int) -> str:
    """A conversions file: one day's rows of one goal, built for the goal set ``goal_set``."""
    return f"{fingerprint}-conv-{goal_set}-{goal_hex(gid)}-c{CONVERSIONS_FORMAT}.parquet"


def file_parts(name: str) -> tuple[str, str, str] | None:
    """(fingerprint, goal set, goal hex) of a conversions file's name of this format; None for other files."""
    head, sep, tail = name.partition("-conv-")
    suffix = f"-c{CONVERSIONS_FORMAT}.parquet"
    if not sep or not tail.endswith(suffix):
        return None
    goal_set, _, gid = tail.removesuffix(suffix).partition("-")
    return (head, goal_set, gid) if goal_set and len(gid) == 16 else None


def build(con: Connection, prefix: str, goals: Sequence[GoalLike]) -> None:
    """Build ``<prefix>_conv`` from ``<prefix>_hits`` and ``<prefix>_dict`` (of one day or several)."""
    sql, params = build_sql(prefix, goals)
    con.execute(sql, params)


def stage(
    con: Connection, staging_dir: Path, prefix: str, goals: Sequence[GoalLike], where: str = "true"
) -> list[tuple[Path, int]]:
    """Write one staging file per goal (id) of the rows of ``<prefix>_conv`` (see :func:`build`) that match
    ``where`` (one day's: SQL made up by the caller, never input); a goal without conversions that day gets an
    empty file, so that every goal's file is there."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for gid in goal_ids(goals):
        tmp = staging_dir / f"conv-{uuid.uuid4().hex}.parquet"
        # One file per goal: a funnel step reads its goal's rows only (a filter on one file of all goals
        # decodes every goal's rows); sorted by day key, as the hits are.
        con.execute(
            f"COPY (SELECT * FROM {prefix}_conv WHERE gdef = {gid} AND {where} ORDER BY day_key, vno) "
            f"TO {sql_path(tmp)} (FORMAT parquet)"
        )
        out.append((tmp, gid))
    return out


def site_goals(settings: Settings) -> dict[str, tuple[GoalLike, ...]]:
    """The goals of each site of the site configuration in force, by the site's directory name (``site=…``).

    No file, or one that does not parse: no goals (days are then built without a conversions file, and
    queries read the hits, exactly).
    """
    path = settings.site_config_path
    if not path.is_file():
        return {}
    try:
        config = load(path)
    except SiteConfigError as exc:
        log.warning("site configuration: %s (conversions tables not built)", exc)
        return {}
    return {f"site={site_dir_name(s.domain)}": tuple(s.goals) for s in config.sites}


def rebuild(
    settings: Settings,
    lake: Lake,
    visits_dir: Path,
    fingerprint: str,
    tables: dict[str, Path],
    goals: Sequence[GoalLike],
) -> bool:
    """Build a day's conversions files anew from its ``hits`` and ``dict`` files (``tables``) for ``goals``,
    publish them, and remove the day's other conversions files. The caller holds the writer lock."""
    goal_set = goal_set_key(goals)
    if not goal_set:
        return False
    con = connect(settings)
    try:
        for kind in ("hits", "dict"):
            con.execute(f"CREATE TEMP VIEW c_{kind} AS SELECT * FROM read_parquet({sql_path(tables[kind])})")
        build(con, "c", goals)
        staged = stage(con, lake.staging_dir, "c", goals)
    finally:
        con.close()
    keep = set()
    for tmp, gid in staged:
        keep.add(file_name(fingerprint, goal_set, gid))
        publish(tmp, visits_dir / file_name(fingerprint, goal_set, gid))
    for old in visits_dir.glob("*-conv-*.parquet"):
        if old.name not in keep:
            old.unlink(missing_ok=True)
    return True


def goal_set_key(goals: Sequence[GoalLike]) -> str:
    """The name part of a conversions file built for these goals ("" when there are none: no file)."""
    defs = sorted({goal_definition(g) for g in goals})
    if not defs:
        return ""
    return hashlib.sha256("\n".join(defs).encode()).hexdigest()[:16]


def codes_sql(dictionary: str, goals: Sequence[GoalLike], params: dict[str, object], prefix: str) -> str:
    """(day, code, page, gdef): the page codes (pageviews) and event-name codes each goal converts.

    A page pattern is matched once per distinct path of the dictionary's days. Goals of one definition are
    one id: their codes are listed once (else a hit would count once per such goal, before the goals'
    labels are joined).
    """
    parts = []
    for i, g in enumerate({goal_id(g): g for g in goals}.values()):
        cond = dictionary_match(g, params, f"{prefix}{i}")
        parts.append(
            f"SELECT day, code, {g.kind == 'page'} AS page, CAST({goal_id(g)} AS BIGINT) AS gdef FROM {dictionary} "
            f"WHERE {cond}"
        )
    return " UNION ALL ".join(parts)


def dictionary_match(g: GoalLike, params: dict[str, object], key: str) -> str:
    """The condition on a dictionary's rows that picks the codes ``g`` converts: its page pattern over the
    paths, or its event name; the value goes into ``params`` under a name made from ``key``."""
    if g.kind == "page":
        params[f"re{key}"] = g.page_regex
        return f"dimension = 'event:page' AND regexp_full_match(value, CAST($re{key} AS VARCHAR))"
    params[f"ev{key}"] = g.event
    return f"dimension = 'event:name' AND value = CAST($ev{key} AS VARCHAR)"


def props_sql(goals: Sequence[GoalLike], params: dict[str, object], prefix: str, alias: str = "c") -> str:
    """The condition that a joined hit ``h`` has the property values its goal (``{alias}.gdef``) asks."""
    conds = []
    for i, g in enumerate(goals):
        for j, (k, v) in enumerate(sorted(g.props.items()) if g.kind != "page" else ()):
            params[f"{prefix}pk{i}_{j}"], params[f"{prefix}pv{i}_{j}"] = k, v
            conds.append(
                f"({alias}.gdef <> {goal_id(g)} OR "
                f"h.props[CAST(${prefix}pk{i}_{j} AS VARCHAR)] = CAST(${prefix}pv{i}_{j} AS VARCHAR))"
            )
    return " AND ".join(conds) or "true"


def conversions_sql(hits: str, codes: str, props: str, *, by_day: bool = True) -> str:
    """Rows of the conversions table from ``hits`` (a relation of the hits' shape) and ``codes`` (a relation
    of :func:`codes_sql`'s shape; ``by_day``: joined on the day too, else on the code alone).

    ``ts_more`` keeps the invariant of the hits': every second of the row's events when there are more than
    two, else NULL (one event: its first second; two: its first and last).
    """
    # Grouped by the part's own codes (a part is a visit's combination of them), which are not kept: no query
    # these rows answer reads a visit code (a goal column by a visit dimension reads the hits).
    own = ", ".join(f"h.{c}" for c in _OWN)
    any_cols = ", ".join(f"any_value(h.{c}) AS {c}" for c in VISIT_METRIC_COLUMNS)
    seconds = (
        "CASE WHEN h.ts_more IS NOT NULL THEN h.ts_more WHEN h.n = 1 THEN [h.first_ts] ELSE [h.first_ts, h.last_ts] END"
    )
    on_day = "h.day = c.day AND " if by_day else ""
    return f"""SELECT *, {VKEY_SQL} AS vkey FROM (
SELECT h.day, h.day_key, h.vno, c.gdef, h.kind, {any_cols},
  CAST(sum(h.n) AS BIGINT) AS n, min(h.first_ts) AS first_ts, max(h.last_ts) AS last_ts,
  CASE WHEN sum(h.n) > 2 THEN list_sort(flatten(list({seconds}))) END AS ts_more
FROM (SELECT * FROM {hits} WHERE kind <> 1) h
JOIN ({codes}) c ON {on_day}c.page = (h.kind = 0) AND c.code = CASE WHEN h.kind = 0 THEN h.c_page ELSE h.c_name END
WHERE {props}
GROUP BY h.day, h.day_key, h.vno, c.gdef, h.kind, {own})"""


def build_sql(prefix: str, goals: Sequence[GoalLike]) -> tuple[str, dict[str, object]]:
    """The statement that builds ``<prefix>_conv`` from ``<prefix>_hits`` and ``<prefix>_dict`` (one day's)."""
    params: dict[str, object] = {}
    codes = codes_sql(f"{prefix}_dict", goals, params, "b")
    props = props_sql(goals, params, "b")
    return f"CREATE TEMP TABLE {prefix}_conv AS {conversions_sql(f'{prefix}_hits', codes, props)}", params


class GoalRows(str):
    """SQL of goal hits where a row with ``merged`` true is one per (visit part, goal): a conversions row.

    A day key with one visit row has one such row per goal, so a column of goals counts its visitors without
    grouping them by day key (aggregator/querycomps.py, ``event_comps``); rows with ``merged`` false are hits.
    """

    __slots__ = ()


#: Hits columns a conversions row does not have (it merges several pages, names, hours and property sets),
#: as typed NULLs, so that a relation of conversions rows has the hits' shape for every consumer of goal hits.
HITS_ONLY = (
    "NULL::UBIGINT AS c_page, NULL::UBIGINT AS c_name, NULL::TINYINT AS hour, "
    "CAST(NULL AS MAP(VARCHAR, VARCHAR)) AS props, NULL::DOUBLE AS eng, NULL::SMALLINT AS scroll"
)
