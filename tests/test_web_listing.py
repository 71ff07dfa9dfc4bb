"""Server-side lists (debsync.web.listing) over a real store: sorting only by the columns a
page allows, search with LIKE's wildcards taken literally, filters, paging, links."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from starlette.requests import Request

from debsync.store import Store
from debsync.store.schema import debtors
from debsync.web.listing import ListSpec, equals

from conftest import FIXED_NOW

SPEC = ListSpec(
    sorts={"name": debtors.c.name, "id": debtors.c.external_id},
    default_sort="name",
    search=(debtors.c.name, debtors.c.external_id),
    filters={"kind": equals(debtors.c.kind)},
    tiebreak=(debtors.c.external_id,),
    per_page=2,
)
QUERY = sa.select(debtors.c.external_id, debtors.c.name)


def _request(query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/debtors",
            "query_string": query.encode(),
            "headers": [],
        }
    )


@pytest.fixture
def book(sqlite_store: Store) -> Store:
    names = ["Bakkerij 100% Vers", "Aannemer Jansen", "Café de Hoek", "Bakker_Smit", "Zeeman"]
    print_ = hashlib.blake2b(b"l", digest_size=16).digest()
    with sqlite_store.engine.begin() as conn:
        conn.execute(
            sa.insert(debtors),
            [
                {
                    "instance": "books",
                    "external_id": f"D{n}",
                    "name": name,
                    "kind": "consumer" if n % 2 else "business",
                    "emails": [],
                    "phones": [],
                    "language": "nl",
                    "fingerprint": print_,
                    "created_at": FIXED_NOW,
                    "updated_at": FIXED_NOW,
                }
                for n, name in enumerate(names, start=1)
            ],
        )
    return sqlite_store


def _ids(store: Store, query: str) -> tuple[list[str], int, int]:
    listing = SPEC.read(_request(query))
    with store.engine.connect() as conn:
        page = listing.fetch(conn, QUERY)
    return [r.external_id for r in page.rows], page.total, page.pages


def test_pages_in_the_sort_asked_for(book: Store) -> None:
    assert _ids(book, "") == (["D2", "D4"], 5, 3)  # by name: Aannemer, Bakker_Smit
    assert _ids(book, "page=3") == (["D5"], 5, 3)
    assert _ids(book, "page=9")[0] == ["D5"]  # past the end: the last page
    assert _ids(book, "sort=id&desc=1")[0] == ["D5", "D4"]
    assert _ids(book, "sort=password_hash")[0] == ["D2", "D4"]  # not a listed sort: default


def test_search_and_filters(book: Store) -> None:
    assert _ids(book, "q=bakker") == (["D4", "D1"], 2, 1)  # case-insensitive
    assert _ids(book, "q=100%25")[0] == ["D1"]  # % is a character, not a wildcard
    assert _ids(book, "q=r_s")[0] == ["D4"]  # so is _
    assert _ids(book, "kind=business") == (["D2", "D4"], 2, 1)
    assert _ids(book, "kind=business&q=jansen")[0] == ["D2"]


def test_links_keep_the_other_choices() -> None:
    listing = SPEC.read(_request("q=bakker&sort=id&page=2"))
    assert listing.url(page=3) == "/debtors?q=bakker&sort=id&page=3"
    assert listing.url(q=None, page=None) == "/debtors?sort=id"
    assert listing.kept("q", "page") == [("sort", "id")]
