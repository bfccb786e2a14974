from __future__ import annotations

import re

import pytest

from collector.bots import Scanner, _python_lookbehinds, _strip_lookarounds, isbot_patterns


@pytest.mark.parametrize(
    ("pattern", "loose"),
    [
        (r"(?<!lib)http", "http"),
        (r"(?<! channel/|google/)google(?!(?:wv|app|/google| pixel))", "google"),
        (r"java(?!;)", "java"),
        (r"a\(b(?=c)", r"a\(b"),
    ],
)
def test_lookarounds_are_stripped_for_re2(pattern: str, loose: str) -> None:
    # RE2 has no lookaround; the looser pattern must match wherever the original does.
    assert _strip_lookarounds(pattern) == loose


def test_javascript_patterns_compile_in_python() -> None:
    assert _python_lookbehinds(r"(?<! channel/|google/)google") == r"(?<! channel/)(?<!google/)google"
    assert _python_lookbehinds(r"[\w\d-.]+") == r"[\w\d\-.]+"
    for p in isbot_patterns():
        re.compile(_python_lookbehinds(p), re.IGNORECASE)


def test_scanner_names_what_matched_and_honours_groups() -> None:
    s = Scanner()
    s.add("bot", "bot", ignore_case=True)
    s.add("tab", r"SM-T\d", group="tablets", lazy=True)
    s.add("lib", r"^curl/", group="other")
    s.compile()
    assert s.scan("GoogleBot SM-T500") == {"bot"}  # a lazy group is only asked for
    assert s.matches("Android SM-T500", "tablets") and not s.matches("Android SM-A500", "tablets")
    assert s.scan("curl/8 BOT") == {"bot", "lib"}
    assert s.scan("nothing") == frozenset()
    assert s.names("GoogleBot SM-T500 curl/8", ("tablets",)) == ["tab"]  # lazy groups, by name
    assert s.names("Android SM-A500", ("tablets",)) == []
