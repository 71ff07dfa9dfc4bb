"""Lists that page, sort, filter and search on the server, over a SQLAlchemy select.

A page declares a :class:`ListSpec` once (the columns one may sort by, the columns a search
looks in, the filters), reads the request's choice with :meth:`ListSpec.read`, and fetches
one page with :meth:`Listing.fetch`; ``templates/_listing.html`` draws the search box, the
sortable headers and the pager. Only names the spec lists reach SQL: a query string cannot
sort by an arbitrary column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, Select
from starlette.requests import Request

Filter = Callable[[str], ColumnElement[bool]]


def equals(column: ColumnElement[Any]) -> Filter:
    """A filter that keeps rows whose ``column`` equals the value given."""
    return lambda value: column == value


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class ListSpec:
    sorts: Mapping[str, ColumnElement[Any]]
    default_sort: str
    default_descending: bool = False
    search: Sequence[ColumnElement[Any]] = ()
    """Columns a search looks in, case-insensitively, for the text anywhere."""
    filters: Mapping[str, Filter] = field(default_factory=dict)
    tiebreak: Sequence[ColumnElement[Any]] = ()
    """Columns that order rows the sort leaves equal, so paging never repeats a row."""
    per_page: int = 50

    def read(self, request: Request) -> Listing:
        """The list as the request's query string asks for it; anything unknown or malformed
        falls back to the defaults."""
        params = {k: v for k, v in request.query_params.items() if v}
        sort = params.get("sort", self.default_sort)
        if sort not in self.sorts:
            sort = self.default_sort
        descending = params.get("desc", "1" if self.default_descending else "0") == "1"
        page = int(params["page"]) if params.get("page", "").isdigit() else 1
        chosen = {name: params[name] for name in self.filters if name in params}
        return Listing(
            self,
            request.url.path,
            params,
            max(page, 1),
            sort,
            descending,
            params.get("q", "").strip(),
            chosen,
        )


@dataclass(frozen=True)
class Listing:
    spec: ListSpec
    path: str
    params: dict[str, str]
    page: int
    sort: str
    descending: bool
    query: str
    filters: dict[str, str]

    def url(self, **changes: object) -> str:
        """This list's address with some parameters changed (``None`` drops one)."""
        merged: dict[str, object] = {**self.params, **changes}
        kept = {k: str(v) for k, v in merged.items() if v not in (None, "")}
        return f"{self.path}?{urlencode(kept)}" if kept else self.path

    def kept(self, *dropped: str) -> list[tuple[str, str]]:
        """The parameters a form on the page carries along as hidden fields."""
        return [(k, v) for k, v in self.params.items() if k not in dropped]

    def where(self, select: Select[Any]) -> Select[Any]:
        """``select`` narrowed by the filters and the search."""
        for name, value in self.filters.items():
            select = select.where(self.spec.filters[name](value))
        if self.query and self.spec.search:
            pattern = _like(self.query)
            select = select.where(
                sa.or_(*(column.ilike(pattern, escape="\\") for column in self.spec.search))
            )
        return select

    def fetch(self, conn: sa.Connection, select: Select[Any]) -> Page:
        """One page of ``select``'s rows and the number of rows in all pages."""
        narrowed = self.where(select)
        total = conn.execute(
            sa.select(sa.func.count()).select_from(narrowed.order_by(None).subquery())
        ).scalar_one()
        column = self.spec.sorts[self.sort]
        order = [column.desc() if self.descending else column.asc(), *self.spec.tiebreak]
        pages = max(1, math.ceil(total / self.spec.per_page))
        page = min(self.page, pages)
        rows = conn.execute(
            narrowed.order_by(*order)
            .limit(self.spec.per_page)
            .offset((page - 1) * self.spec.per_page)
        ).all()
        return Page(self if page == self.page else _with_page(self, page), list(rows), total)


def _with_page(listing: Listing, page: int) -> Listing:
    return Listing(
        listing.spec,
        listing.path,
        {**listing.params, "page": str(page)},
        page,
        listing.sort,
        listing.descending,
        listing.query,
        listing.filters,
    )


@dataclass(frozen=True)
class Page:
    listing: Listing
    rows: list[Any]
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.listing.spec.per_page))
