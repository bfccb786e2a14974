from __future__ import annotations

import dataclasses

import pytest

from collector.schema import FIELD_NAMES, Event, new_event
from tests.events import make_event


def test_new_event_builds_the_same_frozen_event() -> None:
    # The pipeline's fast constructor: equal (and equally hashed) to the dataclass's own, and as immutable.
    ev = make_event(props=(("plan", "Business"),), asn=3320, isp="Telekom", engaged_ms=10)
    values = [getattr(ev, name) for name in FIELD_NAMES]
    built = new_event(*values)
    assert type(built) is Event
    assert built == ev and hash(built) == hash(ev)
    assert dataclasses.astuple(built) == dataclasses.astuple(ev)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.site = "other.example"  # type: ignore[misc]


def test_new_event_wants_every_field() -> None:
    with pytest.raises(TypeError):
        new_event(*range(len(FIELD_NAMES) - 1))
