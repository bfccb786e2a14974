"""Accuracy of UA classification on the labelled corpus (tests/collector/data/ua/), against issue 17's targets.

The corpus has a ``dev`` split (tuned against) and a ``holdout`` split (never
looked at while tuning); the targets are checked on the whole corpus, and the
held-out split must not be more than a few points worse than the dev split
(a gap would mean the rules fit the examples, not the devices). The figures
themselves are printed by bench/ua_accuracy.py; timings live there too.
"""

from __future__ import annotations

import pytest

from collector.devices import client_hints
from collector.useragent import UAInfo, UAParser
from tests.collector.uacorpus import MAX_HUMANS_DROPPED, SOCIAL_APPS, TARGETS, Entry, Report, figures, load, score


@pytest.fixture(scope="module")
def corpus() -> list[Entry]:
    return load()


@pytest.fixture(scope="module")
def reports(corpus: list[Entry]) -> dict[str, Report]:
    parser = UAParser()

    def classify(ua: str, hints: dict[str, str]) -> UAInfo:
        h = client_hints(hints.get("sec-ch-ua-platform", "").encode(), hints.get("sec-ch-ua-mobile", "").encode())
        return parser.parse(ua, h)

    return {
        "all": score(corpus, classify),
        **{split: score([e for e in corpus if e.split == split], classify) for split in ("dev", "holdout")},
    }


def test_the_corpus_is_big_and_labelled_enough(corpus: list[Entry]) -> None:
    bots = [e for e in corpus if e.bot]
    humans = [e for e in corpus if not e.bot]
    assert len(bots) >= 2000 and len(humans) >= 4000
    assert sum(1 for e in humans if e.weight is not None) >= 900  # traffic-weighted real UAs
    assert {a for e in humans if e.in_app for a in [e.app]} >= set(SOCIAL_APPS)
    assert {e.split for e in corpus} == {"dev", "holdout"}
    assert all(e.src for e in corpus)  # every entry says where it came from


@pytest.mark.parametrize("figure", sorted(TARGETS))
def test_figure_meets_its_target(reports: dict[str, Report], figure: str) -> None:
    value = figures(reports["all"])[figure]
    assert value >= TARGETS[figure], f"{figure}: {value:.2%} < {TARGETS[figure]:.1%}"


def test_humans_wrongly_dropped(reports: dict[str, Report]) -> None:
    r = reports["all"]
    rate = figures(r)["humans wrongly dropped"]
    assert rate <= MAX_HUMANS_DROPPED, f"{rate:.2%} of humans dropped: {r.humans_dropped.misses[:10]}"


def test_no_in_app_browser_of_a_social_app_is_dropped(reports: dict[str, Report]) -> None:
    assert reports["all"].in_app_dropped == []


@pytest.mark.parametrize("figure", ["bots recognised", "device class", "browser family", "OS family"])
def test_held_out_split_is_not_much_worse(reports: dict[str, Report], figure: str) -> None:
    dev, held = figures(reports["dev"])[figure], figures(reports["holdout"])[figure]
    assert held >= dev - 0.05, f"{figure}: held-out {held:.2%} vs dev {dev:.2%}"
