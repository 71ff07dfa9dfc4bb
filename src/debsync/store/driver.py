"""Statements compiled once for a dialect and run through the database driver.

On the hot paths (a first sync's inserts, the outbox's guarded transitions) SQLAlchemy's
per-statement cache lookup and per-row parameter machinery cost more than the database.
Core stays the schema and the query language: the statement is Core's own, compiled for the
connection's dialect, and every value goes through its type's own bind processor, so the
stored bytes are the ones ``conn.execute`` stores. The engine writes JSON documents with
:func:`json_text`: ``json.dumps``'s text, its encoder built once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any]


class Compiled(NamedTuple):
    """A statement compiled for one dialect: its SQL, its parameters in the driver's order
    with their constant values (literals in the statement) or bind processors."""

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, Any]
    processors: Mapping[str, Processor]
    positional: bool

    def params(self, row: Mapping[str, Any]) -> Any:
        """One row's parameters as the driver takes them, each through its bind processor."""
        values = {**self.constants, **row}
        for name, process in self.processors.items():
            values[name] = process(values[name])
        return tuple(values[n] for n in self.names) if self.positional else values


def compile_for(statement: Any, dialect: Dialect, given: Collection[str], **kw: Any) -> Compiled:
    """``statement`` compiled for ``dialect`` (``kw`` as for ``compile``, e.g.
    ``column_keys``); its parameters not ``given`` at run time are the literals it was built
    with."""
    compiled = statement.compile(dialect=dialect, **kw)
    names = tuple(compiled.positiontup or compiled.binds)
    processors = {}
    for name in names:
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    constants = {name: compiled.binds[name].effective_value for name in names if name not in given}
    return Compiled(compiled.string, names, constants, processors, compiled.positiontup is not None)


def _encoder() -> Callable[[Any, int], Any] | None:
    """``json.dumps``'s C encoder with its defaults (``None`` without the C accelerator)."""
    make = getattr(json.encoder, "c_make_encoder", None)  # what JSONEncoder.iterencode uses
    if make is None:  # pragma: no cover - CPython always has _json
        return None
    encode: Callable[[Any, int], Any] = make(
        None,  # markers: documents are never cyclic
        json.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,
        None,  # indent
        ": ",
        ", ",
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    return encode


_ENCODE = _encoder()


def json_text(value: Any) -> str:
    """``json.dumps(value)``, for the engine to write JSON columns with: the same text, with
    the C encoder built once instead of once a document (a first sync writes a document per
    dossier event, 120,000 for 100,000 invoices). One module-level function, so a driver that
    keeps a dumper per function (psycopg) keeps one."""
    if _ENCODE is None:  # pragma: no cover
        return json.dumps(value)
    return "".join(_ENCODE(value, 0))
