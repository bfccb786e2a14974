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
