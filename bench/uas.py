"""Realistic User-Agent strings for benchmarks and demo traffic.

:func:`corpus_sample` draws from the labelled corpus (tests/collector/data/ua/):
Intoli's real-traffic UAs by their traffic weight (most of the draws), plus the
corpus's other human and bot strings uniformly (the long tail a collector also
sees). :func:`sample` is the older synthetic set: real browsers' UA formats with
real version numbers, more than 200 distinct strings drawn Zipf-style.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "collector" / "data" / "ua"

_WIN = ["Windows NT 10.0; Win64; x64", "Windows NT 10.0; WOW64", "Windows NT 6.1; Win64; x64"]
_MAC = ["Macintosh; Intel Mac OS X 10_15_7", "Macintosh; Intel Mac OS X 14_6_1", "Macintosh; Intel Mac OS X 13_5"]
_LINUX = ["X11; Linux x86_64", "X11; Ubuntu; Linux x86_64"]
_ANDROID = [
    "Linux; Android 14; Pixel 8",
    "Linux; Android 13; SM-S918B",
    "Linux; Android 12; moto g(60)",
    "Linux; Android 14; SM-X710",
    "Linux; Android 10; K",
]
_IOS = ["17_1", "17_4_1", "18_0", "18_1", "16_7_10"]


def real_user_agents() -> list[str]:
    uas: list[str] = []
    for major in range(118, 132):
        for plat in _WIN + _MAC + _LINUX:
            uas.append(
                f"Mozilla/5.0 ({plat}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"
            )
        for plat in _ANDROID:
            uas.append(
                f"Mozilla/5.0 ({plat}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Mobile Safari/537.36"
            )
        uas.append(
            f"Mozilla/5.0 ({_WIN[0]}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 "
            f"Safari/537.36 Edg/{major}.0.0.0"
        )
    for major in range(120, 134):
        for plat in (
            "Windows NT 10.0; Win64; x64",
            "Macintosh; Intel Mac OS X 10.15",
            "X11; Linux x86_64",
            "X11; Ubuntu; Linux x86_64",
        ):
            uas.append(f"Mozilla/5.0 ({plat}; rv:{major}.0) Gecko/20100101 Firefox/{major}.0")
        uas.append(f"Mozilla/5.0 (Android 14; Mobile; rv:{major}.0) Gecko/{major}.0 Firefox/{major}.0")
    for ios in _IOS:
        v = ios.split("_")[0]
        uas.append(
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
            f"Gecko) Version/{v}.0 Mobile/15E148 Safari/604.1"
        )
        uas.append(
            f"Mozilla/5.0 (iPad; CPU OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            f"Version/{v}.0 Mobile/15E148 Safari/604.1"
        )
        uas.append(
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"
        )
    for v in ("16.6", "17.0", "17.4", "18.0", "18.1"):
        uas.append(
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            f"Version/{v} Safari/605.1.15"
        )
    for v in ("24.0", "25.0", "26.0"):
        uas.append(
            f"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"SamsungBrowser/{v} Chrome/121.0.0.0 Mobile Safari/537.36"
        )
    uas.append(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0"
    )
    return uas


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


def sample(n: int, seed: int = 7) -> list[str]:
    uas = real_user_agents()
    rng = random.Random(seed)
    rng.shuffle(uas)
    return rng.choices(uas, weights=zipf_weights(len(uas)), k=n)


def corpus_sample(n: int, seed: int = 7, tail: float = 0.05) -> list[str]:
    """``n`` UAs: weighted real traffic, plus a ``tail`` share of the corpus's other strings (bots included)."""
    weighted: list[tuple[str, float]] = []
    rest: list[str] = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if entry.get("weight"):
                weighted.append((entry["ua"], entry["weight"]))
            else:
                rest.append(entry["ua"])
    rng = random.Random(seed)
    head = rng.choices([u for u, _ in weighted], weights=[w for _, w in weighted], k=n)
    return [rng.choice(rest) if rng.random() < tail else ua for ua in head]
