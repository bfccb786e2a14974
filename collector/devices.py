"""Device class and OS family from the UA string, refined by User-Agent Client Hints.

ua-parser names the browser and the OS; what it cannot do well is say whether
a device is held in the hand, and a few systems hide behind another's name
(Fire OS and Wear OS behind Android, iPadOS behind iOS). These rules fill that
gap from tokens that the devices' own browsers send:

- tablets that send "Mobile Safari" are known by their model codes (Galaxy
  Tab ``SM-T``/``SM-X``, Lenovo ``TB-``, Huawei MatePad, Xiaomi Pad, Fire ``KF``);
- Android without "Mobile" is a tablet unless it is a TV, a VR headset, a
  car, a desktop mode or an app's HTTP client on a phone (Dalvik);
- feature phones (MIDP/CLDC, KaiOS, Series 40, BREW) are mobile;
- an iPad with iOS 13 or later runs iPadOS. An iPad in its default
  "desktop-class" mode sends a Mac's UA and cannot be told from a Mac: it
  counts as macOS, desktop;
- Microsoft Office's apps write ``Mac OS/12.0.1`` or ``iOS/14.2; Tablet``.

Client hints (``Sec-CH-UA-Platform``, ``Sec-CH-UA-Mobile``, the low-entropy ones
every Chromium browser sends on HTTPS) override the frozen parts of Chrome's
reduced UA. They are reduced to a closed set of values before anything else
sees them (:func:`client_hints`), and, like the UA, never stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib import resources
from typing import NamedTuple

from collector.bots import Scanner


class Hints(NamedTuple):
    platform: str  # one of _PLATFORMS' values, or ""
    mobile: str  # "?1", "?0" or ""
    headless: bool = False  # the Sec-CH-UA brand list names a headless browser

    @property
    def sent(self) -> bool:
        """The browser sent client hints (every Chromium browser does, on HTTPS)."""
        return bool(self.platform or self.mobile)


NO_HINTS = Hints("", "")
_PLATFORMS = {
    b"android": "Android",
    b"chrome os": "Chrome OS",
    b"chromium os": "Chrome OS",
    b"ios": "iOS",
    b"linux": "Linux",
    b"macos": "macOS",
    b"windows": "Windows",
}


_MOBILE = {b"?0": "?0", b"?1": "?1"}  # shared strings: a cache key holds no copy of its own


def client_hints(platform: bytes | None, mobile: bytes | None, brands: bytes | None = None) -> Hints:
    """The hints as a closed set of values: anything else is treated as absent.

    ``brands`` (Sec-CH-UA) is only looked at for the word "Headless"; nothing
    of it is kept.
    """
    p = _PLATFORMS.get(platform.strip().strip(b'"').lower(), "") if platform else ""
    m = _MOBILE.get(mobile.strip(), "") if mobile else ""
    return Hints(p, m, brands is not None and b"Headless" in brands)


# Token name → (pattern, ignore case), all found by one scan (collector.bots.Scanner).
_TABLET_MODELS = (
    r"\b(?:SM-[TPX]\d{3}|GT-P\d{4}|GT-N[58]\d{3}|SCH-I[89]\d\d|SM-W\d{3}\b|/apad\b|Lenovo ?TB|TB-?[JX]?\d{3,4}[FLMNX]|"
    r"Lenovo YT|YT-X\d|YT3?-|Tab ?[APSMK]\d|Tab\d|Yoga Tab|IdeaTab|ThinkPad Tablet|MatePad|MediaPad|"
    r"AGS\d?-|BAH\d?-|BG2-|BTV-|CMR-|DBY\d?-|JDN\d?-|KOB\d?-|MRX-|SCM-|SHT-|BZ[A-Z]-|AGR-|GOT-|HEY\d?-W|"
    r"ELN-W|AGM\d?-W|Pad\b|XiaoMi/MiPad|MI PAD|21051182|22081281|23043RP34|2307BRPDCC|Redmi Pad|"
    r"Nexus (?:7|9|10)\b|Pixel C\b|Pixel Tablet|KF[A-Z]{2,6}\b|Kindle|Silk/|PlayBook|Tablet|RMP\d{4}|OPD\d{4}|"
    r"Nokia T[12]\d|TCL Tab|iPlay|Alldocube|Teclast|Blackview Tab|Galaxy Tab|SHIELD Tablet|Surface|"
    r"MID\b|A3-A\d\d|B3-A\d\d|B1-7\d\d|ME\d{3}[CK]L?\b|K0[01]\w\b|P0\d\d\b|TPA\d\d|Venue \d|Xoom|"
    r"SGP\d{3}|SGPT\d\d|SO-0[35]E|Transformer|Iconia|NOOK|BNTV\d+|\bTAB\b|[-_ ]Tab\b|StarTab|SlidePad|"
    r"MID\d|Flyer|PMT\d{4}|PMP\d{4}|RC0\d{3}|RMD[-_]\d|BQ(?:ru)?-\d{4}|TF-MID|\b[89]0\d\d[A-Z]\b|"
    r"Archos \d+[a-z]* ?(?:Xenon|Platinum|Oxygen|Copper|Neon|Titanium|Carbon|Helium|Cobalt|G9|Internet Tablet))"
)
# Android devices that are neither phones nor tablets: TVs, set-top boxes, VR, cars.
_BIG_SCREENS = (
    r"\b(?:AFT[A-Z0-9]{1,6}\b|Android TV|Google ?TV|SmartTV|Smart-TV|SMART-TV|\bTV\b|BRAVIA|AndroidTV|"
    r"CrKey|Chromecast|SHIELD Android TV|MiTV|MIBOX|DTV|HbbTV|"
    r"Tizen.{0,20}TV|Web0S|webOS|NetCast|Roku|AppleTV|Apple TV|PlayStation|Xbox|Nintendo|Large Screen|"
    r"STB|Set-?top|ATV|Android Automotive|CarPlay|"
    # TV boxes and sticks, TV model codes (32H520T), cars' head units, game handhelds and
    # consoles, smart displays and speakers, single-board computers and tills
    r"\bBox\b|[A-Z0-9]BOX|TV ?Box|Stick\b|\bShell\b|AQUOS|\bX96|\bH96|\bT95|\bMXQ|\b\d{2}[A-Z]{1,4}\d{3,4}[A-Z]{0,2}\b|"
    r"Porsche|benz|BYD AUTO|DiLink|Polestar|\bCAR\b|KZCAR|[-_ ]CORE T\d|OCTOPUS|8227L|\bYT\d{4}|"
    r"Switch\b|Retroid|RGCUBE|GAMEPAD|JXD|\bOUYA\b|\bAEO[A-Z]{2}\b|yandexstation|YNDX-|IFP\d{4}|"
    r"XDH-|FamilyHub|Portal(?:Go)?\b|Echo Show|Nest Hub|ODROID|OrangePi|Raspberry|SMARTPOS|WPOS)"
)
_FEATURE_PHONE = (
    r"MIDP-|CLDC-|KAIOS|Series ?[34]0|S40OviBrowser|BREW|UP\.Browser|Obigo|NetFront|MAUI|Nucleus|MRE/|SPRD|"
    r"Opera Mini|Symbian|SymbOS|Windows Phone|IEMobile|Windows CE|BlackBerry|BB10|J2ME|Profile/|Mocor|"
    r"Spreadtrum|Nokia\w*/|DoCoMo|KDDI-|SoftBank|Vodafone/|J-PHONE|portalmmm|jig browser|Aplix|WTOS|"
    r"WAP-?Browser|\bWAP ?2\.0"
)
TOKENS: dict[str, tuple[str, bool]] = {
    "tablet_model": (_TABLET_MODELS, True),
    "big_screen": (_BIG_SCREENS, True),
    "feature_phone": (_FEATURE_PHONE, True),
    "handheld": (r"\b(?:iPhone|iPod|Mobile|Phone)\b", False),
    "wear": (r"Wear ?OS|WearOS|\bwatch\b|SM-R\d{3}", True),
    # Amazon's model codes: KF… tablets, AFT… Fire TV, AEO… Echo Show and Fire TV Cube.
    "fire": (r"\b(?:KF[A-Z]{2,6}|AFT[A-Z0-9]{1,6}|AEO[A-Z]{2})\b|Silk/|Kindle", False),
    "harmony": (r"HarmonyOS|OpenHarmony|ArkWeb", False),
    "ipad": (r"iPad|\(iOS/\d+[.\d]*; Tablet", False),
    "office": (r"\((?:Mac OS|iOS)/\d|; (?:Desktop|Tablet|Phone);", False),
    "mobile_word": (r"[Mm]obile|^Dalvik/", False),
    # Android laptops and all-in-ones (and Chromebooks running Android apps): not tablets.
    "laptop": (
        r"2in1|Vostro|EliteBook|Latitude|Inspiron|IdeaPad|ThinkPad(?: [^T]|\))|Chromebook|MateBook|ZenBook|VivoBook|"
        r"Notebook|Laptop|\bAIO\b|All-in-One|ProBook|\bPixelbook",
        True,
    ),
    # VR headsets: worn, like a watch (Matomo's "wearable").
    "vr": (r"Quest \d|\bQuest\)|like Quest|OculusBrowser|PicoBrowser|VR Safari|\bPacific\b.*Oculus", False),
    # Systems ua-parser does not name, or names only in a browser's UA: enough to know
    # a UA comes from someone's device, not from a script.
    "other_system": (
        r"Amiga|RISC OS|OpenVMS|BeOS|Haiku|MorphOS|OS/2|SunOS|IRIX|HP-UX|\bAIX\b|Darwin/\d|iPhone_OS|\bWin(?:64|32)\b|"
        r"Windows|(?i:android)|\biOS\b|watchOS|ViziOS|Tizen|webOS|PlayStation|Xbox|Nintendo",
        False,
    ),
}
# Systems ua-parser calls Linux, Android or nothing, named by their own tokens (first match wins).
OS_TOKENS: tuple[tuple[str, str], ...] = (
    ("webOS", r"Web0S|webOS|WEBOS"),
    ("Meta Horizon", r"OculusBrowser|Quest \d|like Quest"),
    ("PICO OS", r"PicoBrowser|Pico Neo"),
    ("PlayStation Portable", r"PlayStation Portable|\bPSP\b"),
    ("PlayStation", r"PlayStation|Playstation"),
    ("Nintendo", r"Nintendo"),
    ("VIDAA", r"VIDAA"),
    ("TiVo OS", r"TiVo"),
    ("SteamOS", r"SteamOS|Steam ?Deck"),
    ("Tizen", r"Tizen"),
    ("KaiOS", r"KAIOS|KaiOS"),
    # UC Browser's Java build on Android writes "Adr 4.4.2" beside its MIDP profile; a
    # lower-cased UA is read as Linux by ua-parser's case-sensitive Android rule.
    ("Android", r"\bAdr \d|\(linux;(?: u;)? android \d"),
    ("Java ME", r"J2ME|MIDP-|\bMIDP\b"),
)
_OS_TOKEN_NAMES = tuple(f"os:{name}" for name, _ in OS_TOKENS)
_IOS_VERSION = re.compile(r"(?:CPU OS |iOS/)(\d+)")
_OFFICE_MAC = re.compile(r"\(Mac OS/(\d+)")
_OFFICE_IOS = re.compile(r"\(iOS/(\d+)")
_OFFICE_KIND = re.compile(r"; (Desktop|Tablet|Phone);")
# Systems that a hint must not flatten back into their parent ("Android").
_FINER = frozenset({"Fire OS", "HarmonyOS", "Wear OS", "iPadOS", "Chrome OS"})


TABLET_LIST = "tablets"


def register(scanner: Scanner) -> None:
    for name, (pattern, ignore_case) in TOKENS.items():
        scanner.add(name, pattern, ignore_case)
    for name, pattern in OS_TOKENS:
        scanner.add(f"os:{name}", pattern)
    # Mobile Detect's tablet list (MIT, vendored): brand by brand model codes of Android
    # tablets, many of which send "Mobile Safari". Costly (~8 µs on an Android UA), so
    # asked only for an Android UA that says "Mobile" and nothing else decided it.
    raw = resources.files("collector").joinpath("data", "mobile-detect-tablets.json").read_text()
    for pattern in json.loads(raw)["tablets"].values():
        scanner.add("listed_tablet", pattern, ignore_case=True, group=TABLET_LIST, lazy=True)


#: Every OS name these rules can give (the closed vocabulary, collector.uavocab, takes them in).
OS_NAMES = frozenset(
    {"Fire OS", "HarmonyOS", "Wear OS", "iPadOS", "iOS", "macOS", "Chrome OS", "Linux"}
    | set(_PLATFORMS.values())
    | {name for name, _ in OS_TOKENS}
)


def os_family(ua: str, found: frozenset[str], family: str, version: str, hints: Hints) -> tuple[str, str]:
    """Refine ua-parser's OS family (already renamed to ours) and major version."""
    if family in ("Android", "Linux", "Unknown"):
        if "fire" in found:
            return "Fire OS", ""
        if "harmony" in found:
            return "HarmonyOS", ""
        if family == "Android" and "wear" in found:
            return "Wear OS", ""
    if family in ("Android", "Linux", "Unknown"):
        for token in _OS_TOKEN_NAMES:
            if token in found:
                return token[3:], ""
    if family == "Unknown" and "office" in found:
        if m := _OFFICE_MAC.search(ua):
            return "macOS", m.group(1)
        if m := _OFFICE_IOS.search(ua):
            return ("iPadOS" if "ipad" in found and int(m.group(1)) >= 13 else "iOS"), m.group(1)
    if family == "Chrome OS":
        return family, ""  # the UA carries a platform build (14541.0.0), not a release number
    if family == "iOS" and "ipad" in found:
        major = version or ((m := _IOS_VERSION.search(ua)) and m.group(1)) or ""
        if major.isdigit() and int(major) >= 13:
            return "iPadOS", major
    if hints.platform and hints.platform != family and family not in _FINER:
        # The browser's own word beats a frozen, desktop-mode or spoofed UA platform;
        # the UA's version belonged to the other system, so none is kept.
        return hints.platform, ""
    return family, version


def device_class(ua: str, found: frozenset[str], os: str, hints: Hints, listed_tablet: Callable[[str], bool]) -> str:
    """desktop | mobile | tablet; ``listed_tablet`` asks the scanner's Mobile Detect group."""
    if "office" in found and (m := _OFFICE_KIND.search(ua)):
        return {"Desktop": "desktop", "Tablet": "tablet", "Phone": "mobile"}[m.group(1)]
    if "vr" in found:
        return "mobile"
    if ("big_screen" in found or "laptop" in found) and os not in ("iOS", "iPadOS"):
        return "desktop"
    if os == "iPadOS" or "ipad" in found:
        return "tablet"
    if os in ("iOS", "watchOS", "Wear OS", "KaiOS", "Windows Phone", "Symbian", "BlackBerry OS"):
        return "mobile"
    if os in ("Android", "Fire OS", "HarmonyOS"):
        if "big_screen" in found:
            return "desktop"
        if "tablet_model" in found:
            return "tablet"
        if hints.mobile:
            return "mobile" if hints.mobile == "?1" else "tablet"
        if "mobile_word" not in found:
            return "tablet"
        return "tablet" if listed_tablet(_platform_part(ua)) else "mobile"
    if hints.mobile == "?1":
        return "mobile"
    if "big_screen" in found:
        return "desktop"
    if "feature_phone" in found or "handheld" in found:
        return "mobile"
    if "tablet_model" in found:
        return "tablet"
    return "desktop"


def _platform_part(ua: str) -> str:
    """The UA up to its platform comment's end, where an Android UA names its model.

    Mobile Detect's model codes are looked for there only: the rest of a browser UA
    (``AppleWebKit/537.36 (KHTML, like Gecko) Chrome/… Mobile Safari/…``) names no
    device, and an unseen string costs the list's automaton a new state per
    character (~9 µs for a whole UA, the costliest step of an uncached parse).
    """
    end = ua.find(")")
    return ua if end < 0 else ua[: end + 1]


_DEVICE_TOKENS = frozenset({"feature_phone", "big_screen", "tablet_model", "ipad", "wear", "fire", "other_system"})


def is_device(found: frozenset[str]) -> bool:
    """Tokens of a device or system (a feature phone, a TV, a tablet model, an OS ua-parser does not name)."""
    return not _DEVICE_TOKENS.isdisjoint(found)
