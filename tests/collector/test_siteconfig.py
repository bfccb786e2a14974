"""collector.siteconfig: the format, its validation, Plausible's page patterns, saving and reloading."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from collector.siteconfig import (
    DEMO_SITE,
    SiteConfig,
    SiteConfigConflict,
    SiteConfigError,
    Watcher,
    demo_site,
    ensure,
    from_dict,
    load,
    page_regex,
    parse,
    save,
    seed_config,
)


def _config(**site: Any) -> dict[str, Any]:
    return {"format": 1, "sites": [{"domain": "www.onecloud.example", **site}]}


def test_the_demo_site_has_the_policys_goals_and_funnels() -> None:
    site = demo_site()
    names = [g.name for g in site.goals]
    for goal in ("Order", "Contact", "Newsletter Signup", "Information Request", "Job Application"):
        assert goal in names
    assert "Visit /order/thanks" in names and "Visit /careers/*/applied" in names
    assert site.goal("Order: Business plan") is not None and site.goal("Order: Business plan").props == {
        "plan": "Business"
    }
    assert {f.name for f in site.funnels} == {"Ordering", "Job application"}
    # Event goals allow their event, goals with props keep their keys.
    assert "Order" in site.custom_events and "plan" in site.prop_keys


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        # Plausible's own cases (its query tests): "**" and "*" both run over "/".
        ("/blog**", "/blog", True),
        ("/blog**", "/blog/post-1", True),
        ("/**/post", "/blog/something/post", True),
        ("/**/post", "/different/page/post", True),
        ("/**/post", "/post", False),
        ("/blog*", "/blog/post-1", True),
        ("/checkout/order-received/*", "/checkout/order-received/:id", True),
        ("/careers/*/applied", "/careers/engineer/applied", True),
        ("/careers/*/applied", "/careers/engineer/applied/x", False),
        # Everything else is literal: "." is a dot, regex syntax means nothing.
        ("/a.html", "/aXhtml", False),
        ("/a.html", "/a.html", True),
        ("/(x)+[y]{2}$^", "/(x)+[y]{2}$^", True),
        # "|" separates alternatives, as in Plausible.
        ("/a|/b", "/b", True),
        ("/a|/b", "/ab", False),
        ("/", "/x", False),
    ],
)
def test_page_patterns_read_like_plausibles(pattern: str, path: str, hit: bool) -> None:
    assert (re.fullmatch(page_regex(pattern), path) is not None) is hit
    site = from_dict(_config(goals=[{"page": pattern}])).sites[0]
    assert site.goals[0].name == f"Visit {pattern}"
    assert site.goals[0].matches("pageview", path) is hit
    assert not site.goals[0].matches("engagement", path)


def test_event_goals_match_name_and_property_values() -> None:
    site = from_dict(
        _config(goals=[{"event": "Signup"}, {"event": "Signup", "props": {"plan": "Pro"}, "name": "Pro signup"}])
    ).sites[0]
    plain, pro = site.goals
    assert plain.name == "Signup" and pro.name == "Pro signup"
    assert plain.matches("Signup", "/any") and plain.matches("Signup", "/", {"plan": "Free"})
    assert pro.matches("Signup", "/", {"plan": "Pro", "x": "y"})
    assert not pro.matches("Signup", "/", {"plan": "Free"}) and not pro.matches("Signup", "/")
    assert not plain.matches("pageview", "/Signup")


def test_lookup_ignores_case_and_www() -> None:
    config = from_dict(_config())
    for spelling in ("www.onecloud.example", "WWW.OneCloud.Example", "onecloud.example"):
        site = config.site(spelling)
        assert site is not None and site.domain == "www.onecloud.example"
    assert config.site("onecloud.example.evil") is None


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ({"goal": []}, "unknown key 'goal'"),
        ({"goals": [{"page": "/a", "event": "b"}]}, "either 'page'"),
        ({"goals": [{}]}, "either 'page'"),
        ({"goals": [{"page": "a"}]}, "starts with '/'"),
        ({"goals": [{"page": "/a?b=1"}]}, "without query"),
        ({"goals": [{"page": "/a", "props": {"k": "v"}}]}, "only event goals"),
        ({"goals": [{"event": "pageview"}]}, "built in"),
        ({"goals": [{"event": "A"}, {"event": "A", "props": {"k": "v"}}]}, "appears twice"),
        ({"custom_events": ["engagement"]}, "built in"),
        ({"custom_events": ["A", "A"]}, "appears twice"),
        ({"custom_events": ["A\u200bB"]}, "invisible"),
        ({"custom_events": ["x" * 121]}, "longer than 120"),
        ({"custom_events": [""]}, "must not be empty"),
        ({"prop_keys": [f"k{i}" for i in range(31)]}, "more than 30"),
        ({"goals": [{"event": "A"}], "funnels": [{"name": "F", "steps": ["A"]}]}, "2 to 8 steps"),
        ({"goals": [{"event": "A"}], "funnels": [{"name": "F", "steps": ["A", "B"]}]}, "'B' is not a goal"),
        ({"goals": [{"event": "A"}], "funnels": [{"name": "F", "steps": ["A", "A"]}]}, "appears twice"),
        (
            {"goals": [{"event": str(i)} for i in range(9)], "funnels": [{"name": "F", "steps": list("012345678")}]},
            "more than 8",
        ),
        ({"domain": "not a host"}, "not a host name"),
    ],
)
def test_mistakes_are_errors_that_say_where(site: dict[str, Any], message: str) -> None:
    with pytest.raises(SiteConfigError, match=re.escape(message)):
        from_dict(_config(**site))


def test_format_level_mistakes() -> None:
    with pytest.raises(SiteConfigError, match="appears twice"):
        parse('{"sites": [], "sites": []}')
    with pytest.raises(SiteConfigError, match="not valid JSON"):
        parse("{")
    with pytest.raises(SiteConfigError, match="format 1"):
        parse('{"format": 2, "sites": []}')
    with pytest.raises(SiteConfigError, match="site 'onecloud.example' appears twice"):
        from_dict({"sites": [{"domain": "www.onecloud.example"}, {"domain": "onecloud.example"}]})


def test_a_saved_file_reads_back_the_same(tmp_path: Path) -> None:
    config = seed_config(("www.onecloud.example", DEMO_SITE), ("Signup",))
    path = tmp_path / "sites.json"
    saved = save(config, path, expected_revision="")
    assert load(path) == config and load(path).revision == saved.revision != ""
    demo = config.site(DEMO_SITE)
    assert demo is not None and "Signup" in demo.custom_events and demo.goals == demo_site().goals
    other = config.site("onecloud.example")
    assert other is not None and other.custom_events == ("Signup",) and not other.goals
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_edit_from_an_old_revision_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sites.json"
    first = save(from_dict(_config()), path, expected_revision="")
    second = save(from_dict(_config(custom_events=["A"])), path, expected_revision=first.revision)
    with pytest.raises(SiteConfigConflict):
        save(from_dict(_config(custom_events=["B"])), path, expected_revision=first.revision)
    assert load(path).revision == second.revision
    with pytest.raises(SiteConfigConflict):  # "" means: create, and it exists
        save(from_dict(_config()), path, expected_revision="")


def test_an_invalid_edit_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sites.json"
    save(from_dict(_config()), path)
    before = path.read_bytes()
    config = load(path)
    with pytest.raises(SiteConfigError):
        config.replace_site(
            type(config.sites[0])("www.onecloud.example", ("pageview",))  # a built-in name as custom event
        )
    assert path.read_bytes() == before


def test_ensure_seeds_once(tmp_path: Path) -> None:
    path = tmp_path / "sites.json"
    assert ensure(path, seed_config(("a.example",), ())).domains == ("a.example",)
    # Later starts read the file; other legacy values no longer change it.
    assert ensure(path, seed_config(("b.example",), ())).domains == ("a.example",)


def test_the_watcher_reloads_a_changed_file_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = tmp_path / "sites.json"
    fallback = seed_config(("legacy.example",), ())
    watcher = Watcher(path, fallback)
    assert watcher.current.domains == ("legacy.example",)  # no file yet: the legacy settings
    assert not watcher.check()
    save(from_dict(_config()), path)
    assert watcher.check() and watcher.current.domains == ("www.onecloud.example",)
    assert not watcher.check()  # unchanged: nothing re-read
    path.write_text(json.dumps(_config(goals=[{"page": "no slash"}])))
    assert not watcher.check()
    assert watcher.current.domains == ("www.onecloud.example",)
    assert watcher.last_error is not None and "starts with '/'" in watcher.last_error
    path.write_text(json.dumps(_config(custom_events=["Signup"])))
    assert watcher.check() and watcher.last_error is None
    site = watcher.current.site("www.onecloud.example")
    assert site is not None and site.custom_events == ("Signup",)


def test_a_broken_file_at_start_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sites.json"
    path.write_text('{"sites": [{"domain": "x.example", "goals": [{"page": "x"}]}]}')
    with pytest.raises(SiteConfigError, match=re.escape(str(path)) + r".*goals\[0\]\.page"):
        Watcher(path)


def test_an_empty_configuration_is_allowed() -> None:
    assert from_dict({"sites": []}) == SiteConfig(())


def test_concurrent_saves_from_one_revision_let_exactly_one_win(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "sites.json"
    base = save(from_dict(_config()), path)
    results: list[str] = []
    start = threading.Barrier(8)

    def edit(i: int) -> None:
        start.wait()
        try:
            save(from_dict(_config(custom_events=[f"E{i}"])), path, expected_revision=base.revision)
            results.append("saved")
        except SiteConfigConflict:
            results.append("conflict")

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["saved"]
    site = load(path).site("www.onecloud.example")
    assert site is not None and len(site.custom_events) == 1
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_saves_in_one_process_do_not_trip_over_each_other(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "sites.json"
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def edit(i: int) -> None:
        start.wait()
        for j in range(25):
            try:
                save(from_dict(_config(custom_events=[f"E{i}-{j}"])), path)
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert load(path).sites  # a whole file, from one of the saves


def test_the_example_in_the_docs_is_a_valid_configuration() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "goals.md").read_text()
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    site = parse(block).site("onecloud.example")
    assert site is not None and site.funnel("Ordering") is not None
