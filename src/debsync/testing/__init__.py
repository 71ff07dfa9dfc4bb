"""The conformance kit: what a third-party connector or action runs to prove it behaves.

Write a harness (your plugin against your fake or recorded API) and subclass the checks::

    from debsync.testing import ConnectorChecks, ConnectorHarness

    class TestMyConnector(ConnectorChecks):
        @pytest.fixture
        def harness(self, tmp_path):
            return MyHarness(tmp_path)

The ``debsync_store`` fixture comes from the kit's pytest plugin (entry point ``pytest11``),
which installing debsync registers. See docs/plugins.md for a walk-through.
"""

from __future__ import annotations

from debsync.testing.actions import SHIPPED_STEPS, ActionChecks, ActionHarness
from debsync.testing.book import SampleBook, sample_book
from debsync.testing.connectors import ConnectorChecks, ConnectorHarness, fetch_all
from debsync.testing.samples import SAMPLE_CREDITOR, sample_context, sample_debtor

__all__ = [
    "SAMPLE_CREDITOR",
    "SHIPPED_STEPS",
    "ActionChecks",
    "ActionHarness",
    "ConnectorChecks",
    "ConnectorHarness",
    "SampleBook",
    "fetch_all",
    "sample_book",
    "sample_context",
    "sample_debtor",
]
