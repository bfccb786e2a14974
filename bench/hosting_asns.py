"""Build collector/data/hosting-asns.txt: AS numbers of hosting and cloud networks, from the bundled AS names.

    .venv/bin/python bench/hosting_asns.py [--db collector/data/asn.mmdb.xz]

Run by hand after the ISP database is refreshed (~10 s). No maintained public
list of hosting ASNs is reachable from the package registries this project
uses, so the list is derived from the organisation names in the bundled
database (DB-IP / RouteViews / NRO, CC BY 4.0): names that say hosting,
servers, cloud, data centre, colocation or VPS, plus the big clouds by number;
minus networks that carry people's traffic even though they run data centres
(CDNs and relays such as Cloudflare, Akamai and Fastly, which carry iCloud
Private Relay and WARP; corporate security proxies such as Zscaler and
Netskope; ISPs whose names merely contain "host" or "colo").
"""

from __future__ import annotations

import argparse
import lzma
import re
import tempfile
from pathlib import Path

import maxminddb

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "collector" / "data" / "hosting-asns.txt"

_HOSTING = re.compile(
    r"\bhosting\b|\bhost\b|\bhosts\b|\bservers?\b|\bcloud\b|data ?cent(?:er|re)s?\b|datacenter|\bcolocation\b|"
    r"\bvps\b|\bdedicated\b|\bserverius\b|digitalocean|linode|\bovh\b|hetzner|vultr|choopa|contabo|scaleway|"
    r"leaseweb|\bm247\b|datacamp|hostinger|\bionos\b|rackspace|softlayer|alibaba|aliyun|tencent cloud|"
    r"huawei cloud|oracle|ibm cloud|hostroyale|hostpapa|hostwinds|godaddy|namecheap|dreamhost|bluehost|"
    r"kamatera|upcloud|gcore|g-core|selectel|timeweb|beget|hostkey|psychz|quadranet|sharktech|colocrossing|"
    r"frantech|buyvm|netcup|ionos|strato|interserver|liquid ?web|a2 hosting|hivelocity|servers\.com|"
    r"equinix metal|packet host|zenlayer|cogent data|shenzhen tencent computer|hangzhou alibaba",
    re.IGNORECASE,
)
# Networks whose traffic is mostly people, whatever their names say.
_PEOPLE = re.compile(
    r"cloudflare|akamai|fastly|\bapple\b|zscaler|netskope|opendns|cisco|palo alto|menlo security|iboss|"
    r"forcepoint|cato networks|imperva|incapsula|edgecast|edgio|limelight|stackpath|sucuri|"
    r"fiber|fibre|telecom|telekom|broadband|cable|mobile|wireless|\bisp\b|university|universit|college|"
    r"school|education|academ|research|bank|government|ministry|afrihost|netcologne|colombia",
    re.IGNORECASE,
)
# The big clouds by number (their AS names are just the company's), and what not to take from them:
# Google's 15169 carries Google's own services and Chrome's IP Protection relays, Microsoft's 3598
# and 8070 its offices, Amazon's 7224 and 16509's siblings are listed as AWS publishes them.
_CLOUDS = {16509, 14618, 8987, 396982, 19527, 36492, 394089, 8075, 45102, 37963, 45090, 132203, 31898, 55990}
_NOT = {15169, 16591, 36040, 43515, 3598, 8070, 35106, 714, 6185, 13335, 209242, 20940, 16625, 36183, 54113}


def build(db: Path) -> dict[int, str]:
    with tempfile.NamedTemporaryFile(suffix=".mmdb") as tmp:
        tmp.write(lzma.open(db).read() if db.suffix == ".xz" else db.read_bytes())
        tmp.flush()
        reader = maxminddb.open_database(tmp.name)
        names: dict[int, str] = {}
        for _, record in reader:
            asn, org = record.get("autonomous_system_number"), record.get("autonomous_system_organization")
            if isinstance(asn, int) and isinstance(org, str):
                names[asn] = org
        reader.close()
    hosting = {a: n for a, n in names.items() if _HOSTING.search(n) and not _PEOPLE.search(n)}
    hosting |= {a: names.get(a, "") for a in _CLOUDS}
    return {a: n for a, n in sorted(hosting.items()) if a not in _NOT}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, default=ROOT / "collector" / "data" / "asn.mmdb.xz")
    args = ap.parse_args()
    hosting = build(args.db)
    lines = [
        "# AS numbers of hosting and cloud networks (collector.isp.is_hosting), one per line; after the tab, the",
        "# AS name in the bundled database. Built by bench/hosting_asns.py from that database's names (DB-IP,",
        "# RouteViews, NRO; CC BY 4.0); do not edit by hand, change the rules there and rebuild.",
    ]
    lines += [f"{asn}\t{name}" for asn, name in hosting.items()]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"{OUT}: {len(hosting)} networks")


if __name__ == "__main__":
    main()
