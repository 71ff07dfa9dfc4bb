"""The pytest plugin of the conformance kit, loaded through the ``pytest11`` entry point.

It gives the checks their fixtures and rewrites the kit's assertions, so a failing check
shows the values involved, not only its message. Connector and action authors need not do
anything to load it: installing debsync is enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("debsync.testing.connectors", "debsync.testing.actions")


@pytest.fixture
def debsync_store(tmp_path: Path) -> Iterator[object]:
    """A migrated, empty SQLite store in the test's temporary directory."""
    from debsync.store import open_store  # imported late: plugins load before test modules

    store = open_store(f"sqlite:///{tmp_path / 'conformance.db'}")
    yield store
    store.dispose()
