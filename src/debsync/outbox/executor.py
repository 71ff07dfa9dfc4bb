"""Carrying out the plan: enqueue today's actions, then send what is due, each exactly once.

For every claimed action, right before sending (:mod:`debsync.outbox.composing`): the
invoices are re-checked against the store (paid or paused ones are dropped; an action left
empty is cancelled), the figures are rebuilt with :func:`~debsync.claims.build_action` for
today, as the scheduler does, the context is assembled (:mod:`debsync.outbox.context`) and
rendered by the channel. The rendered payload and its hash are stored and the row marked
``sending`` in one transaction; only then is the channel called. The outcome the channel
reports decides the next state (see :mod:`debsync.outbox`).
A step counts as taken (``step.sent``) once its message is dispatched; a letter is dispatched
when a person records its posting date.
"""

from __future__ import annotations

import gc
import logging
import traceback
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from tenacity import RetryCallState, Retrying, wait_exponential

from debsync import law, metrics
from debsync.actions.base import (
    Action,
    ActionEnvironment,
    ActionOutcome,
    ActionUnavailableError,
    OutcomeUnknownError,
    PermanentActionError,
    Receipt,
    RetryableActionError,
)
from debsync.clock import Clock, local_date, system_clock
from debsync.config import ActionInstance, Config, OutboxSettings
from debsync.errors import scrub
from debsync.outbox.composing import Composed, Composer, Ending
from debsync.outbox.context import Facts, load_facts
from debsync.outbox.documents import Documents
from debsync.outbox.table import (
    StepTaken,
    Transition,
    claim,
    enqueue,
    event_row,
    move_many,
    payload_digest,
    record_steps,
    release,
    stated_costs,
    sweep,
    worker_id,
)
from debsync.outbox.writeback import WriteBack
from debsync.planning import plan_from_store
from debsync.plugins import Plugins
from debsync.store import Store
from debsync.store.schema import ActionState, CancelCode, EventKind, events
from debsync.templates import Templates

log = logging.getLogger("debsync.outbox")


@dataclass
class ActReport:
    """What one ``debsync act`` did; ``unavailable`` maps an action instance to its error."""

    today: date
    planned: int = 0
    enqueued: int = 0
    revived: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    unavailable: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unavailable and not self.outcomes.get(ActionState.DEAD, 0)


_SENDABLE = (ActionState.PLANNED, ActionState.APPROVED, ActionState.FAILED, ActionState.IN_DOUBT)
"""States an action may be sent (or ended) from, once claimed."""


def _ending(row: Row[Any], ending: Ending) -> Transition:
    _, reason, code = ending
    return Transition(
        row,
        {"cancel_code": code, "last_error": reason, "lease_owner": None, "lease_until": None},
        {"reason": reason, "code": code.value if code else None},
    )


@dataclass
class _Attempt:
    """One action on its way through a batch, and what became of it."""

    row: Row[Any]
    composed: Composed | None
    state: str = ActionState.SENDING
    receipt: Receipt | None = None
    error: str | None = None
    attempts: int = 0  # the attempt count to store
    wait: float | None = None  # seconds until the next attempt

    @property
    def payload(self) -> dict[str, Any]:
        assert self.composed is not None
        return self.composed.payload

    @property
    def invoice_ids(self) -> list[str]:
        assert self.composed is not None
        return self.composed.invoice_ids

    @property
    def dropped(self) -> dict[str, CancelCode]:
        assert self.composed is not None
        return self.composed.dropped

    def fail(self, state: ActionState, error: str, *, counted: bool = True) -> None:
        self.state, self.error = state, scrub(error)  # logged, stored and shown to observers
        self.attempts = self.row.attempts + (1 if counted else 0)

    def unknown(self, error: str, settings: OutboxSettings, *, idempotent: bool) -> None:
        """In doubt. An idempotent channel retries that by itself, but not forever: after
        ``max_attempts`` the action is dead, for a person to look at."""
        self.fail(ActionState.IN_DOUBT, error)
        if idempotent and self.attempts >= settings.max_attempts:
            self.fail(
                ActionState.DEAD,
                f"gave up after {self.attempts} attempts, outcome unknown: {error}",
            )

    def retry(self, exc: RetryableActionError, settings: OutboxSettings) -> None:
        """Back off, or give up after ``max_attempts``; ``Retry-After`` is a minimum."""
        self.fail(ActionState.FAILED, str(exc))
        if self.attempts >= settings.max_attempts:
            self.fail(ActionState.DEAD, f"gave up after {self.attempts} attempts: {exc}")
            return
        wait = backoff(self.attempts, settings.retry_initial_seconds, settings.retry_max_seconds)
        self.wait = max(wait, exc.retry_after or 0)


class _Sent(NamedTuple):
    """A batch handed to its channel, its outcomes not stored yet."""

    attempts: list[_Attempt]
    today: date
    unavailable: ActionUnavailableError | None


@contextmanager
def _collector_skipping_the_heap() -> Iterator[None]:
    """Let the cyclic garbage collector skip what the process already holds (its
    configuration, today's plan, the store's metadata) while the outbox sends: each claim
    allocates thousands of small objects, and every collection they set off walked that whole
    heap again. Objects made while sending are collected as usual."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def backoff(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait before attempt ``attempt + 1``: tenacity's exponential policy, applied
    across process restarts (the next attempt time is stored with the row)."""
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = attempt
    return float(wait_exponential(multiplier=initial, max=maximum)(state))


def receipt_rule(config: Config) -> Any:
    """``(row, dispatched_on) -> presumed receipt`` of a legal copy, per its policy."""

    def presumed(row: Row[Any], dispatched_on: date) -> date | None:
        if not row.legal_copy:
            return None
        policy = config.policies.get(row.plan["policy"]) or config.policy_for(
            row.instance, row.debtor_id
        )
        return law.presumed_receipt(
            dispatched_on,
            "email" if row.channel == "email" else "letter",
            delivery_days=policy.delivery_days,
            email_is_legal_copy=policy.email_is_legal_copy,
        )

    return presumed


class Dispatcher:
    """Plans, enqueues and sends for one configuration and store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        plugins: Plugins,
        *,
        clock: Clock = system_clock,
        owner: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.plugins = plugins
        self.clock = clock
        self.owner = owner or worker_id()
        self.templates = Templates(config.outbox.templates)
        self.rates = law.load_rate_table(config.law.interest_rates)
        self.composer = Composer(config, self.rates, plugins)
        self._actions: dict[str, Action[Any]] = {}
        self.documents = Documents(config, store, clock)
        self._receipt = receipt_rule(config)
        self.writeback = WriteBack(config, store, clock)

    # -- planning ---------------------------------------------------------------------------

    async def act(
        self, channels: Collection[str] | None = None, instances: Collection[str] | None = None
    ) -> ActReport:
        """Plan today (the connector ``instances`` given, else all), enqueue new actions,
        then send everything that is due (on ``channels`` only, when given: the daemon passes
        those whose send window is open)."""
        now = self.clock()
        today_plan = plan_from_store(
            self.config, self.store, now, rates=self.rates, instances=instances
        )
        report = ActReport(today=today_plan.today, warnings=list(today_plan.warnings))
        for warning in report.warnings:  # said once, before anything is sent
            log.warning("%s", warning)
        report.planned = len(today_plan.actions)
        queued = enqueue(self.store, today_plan.actions, now)
        report.enqueued, report.revived = len(queued.new), len(queued.revived)
        await self.execute(report, channels)
        return report

    # -- sending ----------------------------------------------------------------------------

    async def execute(
        self, report: ActReport | None = None, channels: Collection[str] | None = None
    ) -> ActReport:
        """Send every due action (on ``channels``, when given) in batches until none is left."""
        now = self.clock()
        report = report or ActReport(today=local_date(now))
        for key in sweep(self.store, now):
            report.outcomes[ActionState.IN_DOUBT] += 1
            log.warning(
                "action %s: the previous worker stopped while sending", key, extra={"key": key}
            )
        routes = {
            route: action
            for route, action in self.config.routes().items()
            if action.name not in report.unavailable and (channels is None or route[1] in channels)
        }
        with _collector_skipping_the_heap():
            await self._send_due(report, routes)
        await self.writeback.run()  # after the sends, never part of them
        return report

    async def _send_due(
        self, report: ActReport, routes: dict[tuple[str, str], ActionInstance]
    ) -> None:
        """Claim and send in batches until nothing is due."""
        settings = self.config.outbox
        while routes:
            rows = claim(
                self.store,
                self.owner,
                self.clock(),
                lease=timedelta(seconds=settings.lease_seconds),
                limit=settings.batch_size,
                routes=routes.keys(),
            )
            if not rows:
                break
            by_action: dict[str, list[Row[Any]]] = {}
            for row in rows:
                by_action.setdefault(routes[(row.instance, row.channel)].name, []).append(row)
            facts = self._facts(rows)
            for name, group in by_action.items():
                await self._send_group(self.config.actions[name], group, facts, report)
                if name in report.unavailable:
                    routes = {r: a for r, a in routes.items() if a.name != name}

    def _facts(self, rows: Sequence[Row[Any]]) -> Facts:
        with self.store.engine.connect() as conn:
            return load_facts(conn, rows, self.config)

    def actions(self) -> dict[str, Action[Any]]:
        """Every configured action instance, built once (for polling and callbacks)."""
        return {name: self.action(configured) for name, configured in self.config.actions.items()}

    def action(self, configured: ActionInstance) -> Action[Any]:
        found = self._actions.get(configured.name)
        if found is None:
            env = ActionEnvironment(
                instance=configured.name,
                config_dir=self.config.directory,
                templates=self.templates,
                clock=self.clock,
                fetch_document=self.documents.fetch,
            )
            found = self._actions[configured.name] = configured.cls(
                configured.name, configured.settings, env
            )
        return found

    async def _send_group(
        self,
        configured: ActionInstance,
        rows: list[Row[Any]],
        facts: Facts,
        report: ActReport,
    ) -> None:
        """Send one action instance's share of a claim. An idempotent channel takes the rows
        in one batch (one transaction to mark them sending, one to record the outcomes: if the
        process dies between the two they are in doubt and retried, and the receiver
        deduplicates); any other channel one row at a time, so at most one action can be in
        doubt. A batch's outcomes are stored in the transaction that marks the next batch
        sending: one commit per message, and still no row is handed to its channel before it
        is marked, nor marked before the outcomes sent ahead of it are stored."""
        action = self.action(configured)
        size = len(rows) if action.idempotent else 1
        waiting = list(rows)
        sent: _Sent | None = None
        try:
            async with action:
                # one connection for the group, one transaction (and commit) per batch
                with self.store.engine.connect() as conn:
                    while waiting:
                        batch, waiting = waiting[:size], waiting[size:]
                        now = self.clock()
                        today = local_date(now)
                        ready, endings = self._compose(action, batch, facts, today)
                        with conn.begin():
                            if sent is not None:
                                self._record(conn, sent.attempts, sent.today, now)
                            ended = self._end(conn, endings, now)
                            attempts = self._mark_sending(conn, ready, configured, action, now)
                        if sent is not None:
                            self._finished(sent.attempts, configured, report)
                            sent = None
                        self._finished(ended, configured, report)
                        sent = await self._send(action, attempts, today)
                        if sent.unavailable is not None:
                            break
                    if sent is not None:
                        last, sent = sent, None
                        self._settle(last, configured, report)
                        if last.unavailable is not None:
                            raise last.unavailable
        except ActionUnavailableError as exc:
            report.unavailable[configured.name] = str(exc)
            log.error("action %s unavailable: %s", configured.name, exc)
        finally:
            if sent is not None:  # sent, then something failed: store what became of it
                self._settle(sent, configured, report)
            release(self.store, (r.id for r in waiting), self.owner)

    def _compose(
        self, action: Action[Any], rows: list[Row[Any]], facts: Facts, today: date
    ) -> tuple[list[_Attempt], dict[ActionState, list[Transition]]]:
        """The rows ready to send, and the endings of those that end here."""
        ready: list[_Attempt] = []
        endings: dict[ActionState, list[Transition]] = {}
        for row in rows:
            composed = self.composer.compose(action, row, facts, today)
            if isinstance(composed, Ending):
                endings.setdefault(composed.state, []).append(_ending(row, composed))
            else:
                ready.append(_Attempt(row, composed))
        return ready, endings

    def _end(
        self, conn: Connection, endings: dict[ActionState, list[Transition]], now: datetime
    ) -> list[_Attempt]:
        ended: list[_Attempt] = []
        for state, transitions in endings.items():
            reasons = {t.row.id: t.values["last_error"] for t in transitions}
            for row in move_many(
                conn, state, now, transitions, from_states=_SENDABLE, owner=self.owner
            ):
                ended.append(_Attempt(row, None, state, error=reasons[row.id]))
        return ended

    async def _send(self, action: Action[Any], attempts: list[_Attempt], today: date) -> _Sent:
        """Hand the marked rows to the channel; a channel found unavailable takes no more."""
        unavailable: ActionUnavailableError | None = None
        for attempt in attempts:
            if unavailable is not None:  # not tried: as if never claimed, no attempt counted
                attempt.fail(ActionState.FAILED, f"not sent: {unavailable}", counted=False)
                continue
            try:
                attempt.receipt = await action.send(attempt.payload, attempt.row.key)
                attempt.state = ActionState.SENT
            except ActionUnavailableError as exc:
                unavailable = exc
                attempt.fail(ActionState.FAILED, f"channel unavailable: {exc}", counted=False)
            except RetryableActionError as exc:
                attempt.retry(exc, self.config.outbox)
            except PermanentActionError as exc:
                attempt.fail(ActionState.DEAD, str(exc))
            except OutcomeUnknownError as exc:
                attempt.unknown(str(exc), self.config.outbox, idempotent=action.idempotent)
            except Exception as exc:  # a bug in a plugin: the message may have left
                trace = scrub(traceback.format_exc())  # a payload in a frame holds addresses
                log.error("action %s: unexpected error while sending\n%s", attempt.row.key, trace)
                error = f"unexpected {type(exc).__name__}: {exc}"
                attempt.unknown(error, self.config.outbox, idempotent=action.idempotent)
        return _Sent(attempts, today, unavailable)

    def _settle(self, sent: _Sent, configured: ActionInstance, report: ActReport) -> None:
        """Store the outcomes of the last batch sent, in a transaction of their own."""
        with self.store.engine.begin() as conn:
            self._record(conn, sent.attempts, sent.today, self.clock())
        self._finished(sent.attempts, configured, report)

    def _finished(
        self, attempts: list[_Attempt], configured: ActionInstance, report: ActReport
    ) -> None:
        """Count and announce outcomes once they are stored."""
        for attempt in attempts:
            report.outcomes[attempt.state] += 1
            self._tell_observers(attempt, configured)

    def _mark_sending(
        self,
        conn: Connection,
        ready: list[_Attempt],
        configured: ActionInstance,
        action: Action[Any],
        now: datetime,
    ) -> list[_Attempt]:
        """Store exactly what is handed to the channel and mark the rows sending, in one
        transaction that commits before anything is sent."""
        dropped = [
            event_row(a.row, EventKind.ACTION_INVOICE_DROPPED, now, invoice_id=i, reason=code.value)
            for a in ready
            for i, code in a.dropped.items()
        ]
        if dropped:
            conn.execute(sa.insert(events), dropped)
        lease_until = now + timedelta(seconds=self.config.outbox.lease_seconds)
        narrowed = any(a.invoice_ids != a.row.invoice_ids for a in ready)  # else not rewritten
        transitions = []
        for a in ready:
            digest = payload_digest(a.payload)
            transitions.append(
                Transition(
                    a.row,
                    {
                        "payload": a.payload,
                        "payload_sha256": digest,
                        "action": configured.name,
                        "idempotent": action.idempotent,
                        "attempts": a.row.attempts + 1,
                        "lease_until": lease_until,
                        **({"invoice_ids": a.invoice_ids} if narrowed else {}),
                    },
                    {
                        "action": configured.name,
                        "attempt": a.row.attempts + 1,
                        "payload_sha256": digest,
                    },
                )
            )
        moved = {
            row.id
            for row in move_many(
                conn, ActionState.SENDING, now, transitions, from_states=_SENDABLE, owner=self.owner
            )
        }
        return [a for a in ready if a.row.id in moved]

    def _record(
        self, conn: Connection, attempts: list[_Attempt], today: date, now: datetime
    ) -> None:
        """Record every outcome of a batch: one statement per resulting state, then the
        steps the dispatched messages took."""
        released: dict[str, Any] = {"lease_owner": None, "lease_until": None}
        settings = self.config.outbox
        by_state: dict[ActionState, list[Transition]] = {}
        for a in attempts:
            values: dict[str, Any]
            event: dict[str, Any]
            if a.state == ActionState.SENT:
                receipt = a.receipt
                assert receipt is not None
                values = {
                    **released,
                    "receipt": _receipt_json(receipt),
                    "provider_id": receipt.provider_id,
                    "dispatched_on": (receipt.dispatched_on or today)
                    if receipt.dispatched
                    else None,
                    "last_error": None,
                }
                event = {
                    "provider_id": receipt.provider_id,
                    "content_sha256": receipt.content_sha256,
                    "dispatched": receipt.dispatched,
                }
            else:
                wait = a.wait or backoff(
                    max(a.attempts, 1), settings.retry_initial_seconds, settings.retry_max_seconds
                )
                values = {
                    **released,
                    "attempts": a.attempts,
                    "last_error": a.error,
                    "next_attempt_at": now + timedelta(seconds=wait),
                }
                event = {"error": a.error}
                log.warning(
                    "action %s: %s: %s", a.row.key, a.state, a.error, extra={"key": a.row.key}
                )
            by_state.setdefault(ActionState(a.state), []).append(Transition(a.row, values, event))
        taken = []
        for state, transitions in by_state.items():
            moved = move_many(
                conn, state, now, transitions, from_states=(ActionState.SENDING,), owner=self.owner
            )
            if state != ActionState.SENT:
                continue
            attempt_of = {id(a.row): a for a in attempts}
            dispatched = {id(t.row): t for t in transitions if t.values["dispatched_on"]}
            for row in moved:
                if id(row) in dispatched:
                    sent_on = dispatched[id(row)].values["dispatched_on"]
                    taken.append(
                        StepTaken(
                            row,
                            attempt_of[id(row)].invoice_ids,
                            sent_on,
                            self._receipt(row, sent_on),
                            stated_costs(row),
                        )
                    )
        record_steps(conn, taken, now)

    def _tell_observers(self, attempt: _Attempt, configured: ActionInstance) -> None:
        row = attempt.row
        metrics.ACTIONS.labels(row.channel, str(attempt.state)).inc()
        self.plugins.action_finished(
            ActionOutcome(
                key=row.key,
                instance=row.instance,
                debtor_id=row.debtor_id,
                step=row.step,
                channel=row.channel,
                state=str(attempt.state),
                attempt=row.attempts + 1,
                action=configured.name,
                receipt=attempt.receipt,
                error=attempt.error,
            )
        )


def _receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {
        "provider_id": receipt.provider_id,
        "details": dict(receipt.details),
        "dispatched": receipt.dispatched,
        "content_sha256": receipt.content_sha256,
    }
