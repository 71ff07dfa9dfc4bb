"""The sync engine: runs one connector instance and keeps the store's copy of its open items.

Guarantees, whatever the connector:

* Each page and its cursor commit in one transaction. An incremental sync interrupted after
  page N resumes from page N's cursor. A full snapshot interrupted part-way is run again from
  its start: pages already committed re-apply as no-ops, so nothing is lost or doubled, and
  invoices are only ever closed by a snapshot that was seen whole.
* A record identical to the stored one writes nothing and logs nothing.
* An invoice that left the open set (absent from a complete snapshot, or listed in
  ``Page.closed``) is closed and its remaining amount recorded as paid; a lower open amount is a
  partial payment. Connectors with the ``"payments"`` capability report payments themselves, so
  nothing is derived for them.
* A bad record is a reject: counted, stored with the run and shown by ``debsync status``; it
  never stops a page. An invoice rejected in a snapshot is never closed for being "absent".
* A connector with the ``"digest"`` capability (an export read whole, such as CSV) gets the
  last complete snapshot's cursor, a digest of its export; when the export is the same it
  yields one empty complete page at that cursor, and the run repeats that snapshot without
  reading, writing or closing anything: its rejects are stored and shown again, and the run
  and the last success are recorded as for any run.
* A snapshot that would close most open invoices at once (an empty or truncated export, a
  wrong file) is refused unless the operator allows it.
"""

from debsync.sync.engine import SyncEngine, build_connector, sync_instances
from debsync.sync.writer import MassCloseRefused

__all__ = ["MassCloseRefused", "SyncEngine", "build_connector", "sync_instances"]
