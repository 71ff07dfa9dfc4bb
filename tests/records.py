"""Comparing a record a fast path built with the one the validator built."""

from __future__ import annotations

from pydantic import BaseModel


def assert_same(fast: BaseModel, full: BaseModel) -> None:
    """Equal as pydantic compares, and alike in what equality does not look at: the fields
    set, the order of ``__dict__``, the Decimal's exponent (``25`` vs ``25.00``)."""
    assert fast == full
    assert type(fast) is type(full)
    assert fast.model_fields_set == full.model_fields_set
    assert list(fast.__dict__) == list(full.__dict__)
    assert fast.model_dump_json() == full.model_dump_json()
    for name, value in full.__dict__.items():
        assert type(fast.__dict__[name]) is type(value)
        if isinstance(value, BaseModel):
            assert_same(fast.__dict__[name], value)
        else:
            assert repr(fast.__dict__[name]) == repr(value)
