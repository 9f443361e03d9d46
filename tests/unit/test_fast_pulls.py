"""Which long-polls the gateway answers before the framework: only those the route would take as they are."""

from __future__ import annotations

import pytest

from syncbackbone.infra.http.fast_pulls import plain_query


def test_a_plainly_valid_long_poll_is_taken_with_its_parameters() -> None:
    assert plain_query(b"collections=notes,tasks&cursor=eyJ2IjoxfQ&limit=100&wait=25.5") == (
        "eyJ2IjoxfQ",
        "notes,tasks",
        100,
        25.5,
    )
    assert plain_query(b"collections=notes&wait=1") == (None, "notes", 500, 1.0)


@pytest.mark.parametrize(
    "query",
    [
        b"collections=notes",  # no wait: a plain pull, the route's
        b"collections=notes&wait=0",
        b"collections=notes&wait=61",
        b"collections=notes&wait=1e1",
        b"collections=notes&wait=5&limit=0",
        b"collections=notes&wait=5&limit=1001",
        b"wait=5",
        b"collections=no%20way&wait=5",
        b"collections=notes&wait=5&cursor=%25%25",
        b"collections=notes&wait=5&wait=6",
        b"collections=notes&wait=5&extra=1",
        b"collections=notes&wait=5&\xff",
    ],
)
def test_anything_else_is_left_to_the_route(query: bytes) -> None:
    assert plain_query(query) is None
