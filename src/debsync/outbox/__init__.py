"""The outbox: every planned action under its idempotency key, from planning until it is sent.

::

    planned ───────────────────────────────► sending ──► sent
    awaiting_approval ──► approved ──────────┘  │ │
                     └──► cancelled (rejected)   │ └──► failed ──(backoff)──► sending … ──► dead
                                                 └────► in_doubt ──► sent (confirmed by a person)
                                                                 └──► planned (resend)
    any open state ──► cancelled (paid, paused, refused, vetoed, by hand)

The key (``decisions.idempotency_key``: instance, debtor, step, channel, invoice set) is unique
in the table, so planning the same action twice enqueues it once. Rows are claimed with a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two workers never send the same row. A row is
marked ``sending`` in its own transaction before the channel is called: if the process dies
before the outcome is recorded, the expired lease turns it into ``in_doubt``, which is retried
automatically only when the channel declared itself idempotent and otherwise waits for a person
(``debsync outbox review``). Every transition is an event in the debtor's dossier.

The package, one concept a module:

* :mod:`~debsync.outbox.table`: the queue itself: enqueue, claim with leases, guarded
  transitions, the steps taken;
* :mod:`~debsync.outbox.review`: a person's decisions and what waits for them;
* :mod:`~debsync.outbox.executor`: claim, compose, send, record, for one configuration;
* :mod:`~debsync.outbox.context`: what an action needs to know about its debtor and invoices;
* :mod:`~debsync.outbox.documents`: invoice PDFs through the connectors;
* :mod:`~debsync.outbox.preview`: a dry run, and a message exactly as it was or would be sent;
* :mod:`~debsync.outbox.calls`: call tasks and what came of them.

The queue's operations are re-exported here, so callers write ``outbox.enqueue(...)``.
"""

from debsync.outbox.review import approve, cancel, confirm, mark_posted, reject, resend
from debsync.outbox.table import (
    OutboxError,
    claim,
    enqueue,
    find,
    move,
    release,
    rows,
    sweep,
)

__all__ = [
    "OutboxError",
    "approve",
    "cancel",
    "claim",
    "confirm",
    "enqueue",
    "find",
    "mark_posted",
    "move",
    "reject",
    "release",
    "resend",
    "rows",
    "sweep",
]
