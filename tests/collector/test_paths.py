from __future__ import annotations

import pytest

from collector.paths import NO_UTM, extract_utm, scrub_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/", "/"),
        ("", "/"),
        ("/pricing", "/pricing"),
        ("/blog/2026/privacy-first-analytics", "/blog/2026/privacy-first-analytics"),
        ("/users/jane.doe@example.com/profile", "/users/:email/profile"),
        ("/users/jane.doe%40example.com", "/users/:email"),
        ("/orders/123456789", "/orders/:id"),
        ("/orders/order-1234567", "/orders/:id"),
        ("/r/550e8400-e29b-41d4-a716-446655440000", "/r/:uuid"),
        ("/reset/9f86d081884c7d659a2feaa0c55ad015", "/reset/:token"),
        ("/t/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc123", "/t/:token"),
        ("/docs/getting-started-with-onecloud-analytics", "/docs/getting-started-with-onecloud-analytics"),
        ("/a;jsessionid=ABCDEF0123456789", "/a"),
        ("/x/" + "x" * 300, "/x/:long"),
        # Stored normalised: decoded, NFKC, invisible characters gone.
        ("/caf%C3%A9/men%C3%BC", "/café/menü"),
        ("/a%00b/%E2%80%8Bc", "/ab/c"),
        # An encoded "?", "#" or ";" starts a query, fragment or matrix parameters: cut like the real ones.
        ("/page%3Ftoken%3Dabc/more", "/page"),
        ("/page%23section", "/page"),
        ("/a/b%3Bjsessionid%3DABC", "/a/b"),
        # An encoded slash stays inside its segment, which is judged whole.
        ("/t/ab%2FYUBiLmM", "/t/:token"),
        ("/users/jane.doe%252540example.com/x", "/users/:email/x"),
        ("/call/%2B1%20415%20555%200100", "/call/:phone"),
        ("/p/12345", "/p/12345"),
    ],
)
def test_scrub_path(raw: str, expected: str) -> None:
    assert scrub_path(raw) == expected


def test_scrub_path_caps_length() -> None:
    assert len(scrub_path("/" + "/ab" * 1000)) <= 512


def test_utm_values_only() -> None:
    utm = extract_utm("utm_source=newsletter&utm_medium=email&utm_campaign=spring&email=a@b.c&token=x&utm_term=")
    assert utm.source == "newsletter"
    assert utm.medium == "email"
    assert utm.campaign == "spring"
    assert utm.term is None and utm.content is None
    assert extract_utm("q=1&page=2") is NO_UTM


def test_utm_value_carrying_identifier_becomes_its_placeholder() -> None:
    assert extract_utm("utm_source=jane%40example.com").source == ":email"
    assert extract_utm("utm_campaign=9f86d081884c7d659a2feaa0c55ad015").campaign == ":token"
    assert extract_utm("utm_medium=%2B1+415+555+0100").medium == ":phone"
