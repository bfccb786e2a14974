from __future__ import annotations

import pytest

from collector.payload import PayloadError, parse_payload
from collector.schema import MAX_ENGAGED_MS


def test_short_and_long_keys() -> None:
    a = parse_payload(b'{"n":"pageview","u":"https://x.example/a","d":"X.example","r":"https://g.example/"}')
    b = parse_payload(
        b'{"name":"pageview","url":"https://x.example/a","domain":"x.example","referrer":"https://g.example/"}'
    )
    assert a == b
    assert a.domain == "x.example" and a.engaged_ms is None and not a.hash_mode


def test_engagement_is_clipped_and_scroll_clamped() -> None:
    p = parse_payload(b'{"n":"engagement","u":"https://x.example/","d":"x.example","e":99999999,"sd":140}')
    assert p.engaged_ms == MAX_ENGAGED_MS and p.scroll_depth == 100
    p = parse_payload(b'{"n":"engagement","u":"https://x.example/","d":"x.example","e":1500.7,"sd":-3}')
    assert p.engaged_ms == 1500 and p.scroll_depth == 0


def test_engaged_time_is_ignored_on_pageviews() -> None:
    p = parse_payload(b'{"n":"pageview","u":"https://x.example/","d":"x.example","e":5000,"sd":50}')
    assert p.engaged_ms is None and p.scroll_depth is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"null", "body"),
        (b'{"u":"https://x.example/","d":"x"}', "n"),
        (b'{"n":" ","u":"https://x.example/","d":"x"}', "n"),
        (b'{"n":"pageview","d":"x"}', "u"),
        (b'{"n":"pageview","u":"ftp://x.example/","d":"x"}', "u"),
        (b'{"n":"pageview","u":"https://x.example/"}', "d"),
        (b'{"n":"pageview","u":"https://x.example/","d":"x","r":[]}', "r"),
        (b'{"n":"engagement","u":"https://x.example/","d":"x","e":NaN}', "body"),
        (b'{"n":"engagement","u":"https://x.example/","d":"x","e":1e400}', "body"),  # orjson: not finite
    ],
)
def test_errors_name_the_field_and_never_the_value(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_payload(body)
    assert err.value.field == field
    assert "x.example" not in str(err.value)
