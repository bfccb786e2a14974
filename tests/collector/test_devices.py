from __future__ import annotations

import pytest

from collector.useragent import UAParser


@pytest.fixture(scope="module")
def parser() -> UAParser:
    return UAParser()


@pytest.mark.parametrize(
    ("ua", "device", "os"),
    [
        # Fire TV: Android inside, Fire OS outside, and not a handheld.
        ("Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36", "desktop", "Fire OS"),
        # Lenovo tablet sending "Mobile Safari".
        ("Mozilla/5.0 (Linux; Android 12; Lenovo TB-X606F) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/119.0.0.0 Mobile Safari/537.36", "tablet", "Android"),
        # Android without "Mobile": a tablet, unless it is a TV box, a laptop or a VR headset.
        ("Mozilla/5.0 (Linux; Android 14; Pixel Tablet) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/131.0.0.0 Safari/537.36", "tablet", "Android"),
        ("Mozilla/5.0 (Linux; Android 9; X96MATE_PLUS) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0 "
         "Safari/537.36", "desktop", "Android"),
        ("Mozilla/5.0 (Linux; Android 6.0; AfriOne 2in1) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/77.0.3865.92 Safari/537.36", "desktop", "Android"),
        ("Mozilla/5.0 (X11; Linux x86_64; Quest 3) AppleWebKit/537.36 (KHTML, like Gecko) "
         "OculusBrowser/32.1.0 Chrome/122.0.6261.64 VR Safari/537.36", "mobile", "Meta Horizon"),
        # Feature phones with no browser engine.
        ("Nokia6300/2.0 (05.00) Profile/MIDP-2.0 Configuration/CLDC-1.1", "mobile", "Java ME"),
        ("Microsoft Office Word/2.45.106 (iOS/14.2; Tablet; es-MX; AppStore; Apple/iPad8,9)", "tablet", "iPadOS"),
        ("Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 "
         "Safari/537.36 WebAppManager", "desktop", "webOS"),
        ("Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00; HMSCore 6.11.0.302) AppleWebKit/537.36 (KHTML, "
         "like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.2.311 Mobile Safari/537.36", "mobile", "HarmonyOS"),
        # A feature phone's WAP browser, UC's Java build on Android ("Adr"), a lower-cased Android UA.
        ("Q8_Dorado WAP-Browser/1.2.0", "mobile", "Unknown"),
        ("UCWEB/2.0 (MIDP-2.0; U; Adr 9; en-US; Redmi 9A) U2/1.0.0 UCBrowser/13.0.1.1 U2/1.0.0 Mobile",
         "mobile", "Android"),
        ("mozilla/5.0 (linux; android 11; sm-a125f) applewebkit/537.36 (khtml, like gecko) chrome/118.0.0.0 "
         "mobile safari/537.36", "mobile", "Android"),
        # Amazon's Echo Show / Fire TV Cube codes (AEO..), and the Steam Deck.
        ("Mozilla/5.0 (Linux; Android 9; AEOCW) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 "
         "Safari/537.36", "desktop", "Fire OS"),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 "
         "SteamDeck", "desktop", "SteamOS"),
        # Samsung's SM-W + four digits are China's folding phones; SM-W + three, Windows tablets.
        ("Mozilla/5.0 (Linux; Android 14; SM-W9024) AppleWebKit/537.36 (KHTML, like Gecko) "
         "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "mobile", "Android"),
        # Yandex's apps mark a tablet with "/apad" even when the UA says "Mobile".
        ("Mozilla/5.0 (Linux; arm_64; Android 12; T10 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 YaSearchBrowser/24.10/apad BroPP/1.0 Mobile Safari/537.36", "tablet", "Android"),
    ],
)  # fmt: skip
def test_device_class_and_system(parser: UAParser, ua: str, device: str, os: str) -> None:
    info = parser.parse(ua)
    assert (info.device, info.os) == (device, os)


def test_desktop_class_ipad_cannot_be_told_from_a_mac(parser: UAParser) -> None:
    # iPadOS' default Safari sends the Mac's UA: documented as a known limit.
    ua = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15"
    )
    info = parser.parse(ua)
    assert (info.os, info.device) == ("macOS", "desktop")


@pytest.mark.parametrize(
    ("ua", "browser"),
    [
        ("Mozilla/5.0 (Linux; Android 11; Redmi 9) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
         "Chrome/96.0.4664.45 Mobile Safari/537.36 YandexSearch/21.60", "Yandex Browser"),
        ("Mozilla/5.0 (Linux; U; Android 14; en-US; CPH2591 Build/UP1A.231005.007) AppleWebKit/537.36 (KHTML, "
         "like Gecko) Version/4.0 OPR/12.200.210 Mobile Safari/537.36", "Opera"),
    ],
)  # fmt: skip
def test_browsers_ua_parser_reads_as_their_engine(parser: UAParser, ua: str, browser: str) -> None:
    assert parser.parse(ua).browser == browser
