"""Right before sending: re-check an action's invoices, rebuild its figures for today and
render its payload, or say why it ends here instead.

The outbox stores what it sends; whatever the scheduler planned may have changed since (an
invoice paid or paused, a policy edited, a template fixed), so every attempt composes anew from
the store's facts. Reads only: ``debsync preview`` shows the same message without sending it.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import replace
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy.engine import Row

from debsync import law
from debsync.actions.base import Action, RefusedError, RenderError
from debsync.claims import build_action, line_stages
from debsync.config import Config
from debsync.errors import scrub
from debsync.outbox.context import Facts, message_context
from debsync.plugins import Plugins
from debsync.scheduler import pause_covering, pauses_in_force
from debsync.store.schema import ActionState, CancelCode

log = logging.getLogger("debsync.outbox")


class Composed(NamedTuple):
    """An action ready to send: its payload, the invoices it still covers, and those dropped
    since it was planned (paid or paused)."""

    payload: dict[str, Any]
    invoice_ids: list[str]
    dropped: dict[str, CancelCode]


class Ending(NamedTuple):
    """Why an action ends before sending: the state it ends in and the reason."""

    state: ActionState
    reason: str
    code: CancelCode | None = None


class Composer:
    """Composes the claimed actions of one configuration."""

    def __init__(self, config: Config, rates: law.RateTable, plugins: Plugins) -> None:
        self.config = config
        self.rates = rates
        self.plugins = plugins

    def compose(
        self, action: Action[Any], row: Row[Any], facts: Facts, today: date
    ) -> Composed | Ending:
        """Re-check the invoices, rebuild the figures for today and render the payload, or
        say why the action ends here instead. Reads only: ``debsync preview`` uses it too."""
        plan = row.plan
        policy = self.config.policies.get(plan["policy"])
        step_index = policy.index(row.step) if policy else None
        if policy is None or step_index is None:
            return Ending(ActionState.DEAD, f"step {row.step!r} is no longer in its policy")
        in_force = (
            pauses_in_force(
                facts.snapshot(self.config, row.instance, row.debtor_id),
                self.config.policies,
                today,
            )
            if facts.pauses
            else {}
        )
        keep, dropped = [], {}
        for invoice_id in row.invoice_ids:
            inv = facts.invoice_facts((row.instance, invoice_id))
            if inv is None or inv.closed or inv.open_minor <= 0:
                dropped[invoice_id] = CancelCode.PAID
            elif pause_covering(in_force, inv) is not None:
                dropped[invoice_id] = CancelCode.PAUSED
            else:
                keep.append(inv)
        if not keep:
            code = CancelCode.PAID if CancelCode.PAID in dropped.values() else CancelCode.PAUSED
            return Ending(ActionState.CANCELLED, f"every invoice is {code.value}", code)
        rebuilt = build_action(
            facts.debtor_facts(row.instance, row.debtor_id),
            policy,
            step_index,
            row.channel,
            plan["currency"],
            keep,
            facts.history,
            today,
            self.rates,
            explanation=plan["explanation"],
            stages=line_stages(policy, plan["lines"]),
            credits=facts.credits(row.instance, row.debtor_id, plan["currency"]),
        )
        if rebuilt is None:
            reason = "what is left is below the policy's minimum amount"
            return Ending(ActionState.CANCELLED, reason, CancelCode.BELOW_THRESHOLD)
        if rebuilt.key != row.key:  # the same action, with today's figures
            rebuilt = replace(rebuilt, key=row.key)
        if rebuilt.requires_approval and row.state == ActionState.PLANNED:  # a rate gap since
            return Ending(ActionState.AWAITING_APPROVAL, law.HELD_WITHOUT_INTEREST)
        try:
            context = message_context(rebuilt, facts, self.config, today)
            vetoed = self.plugins.veto(context)
            if vetoed is not None:
                return Ending(ActionState.CANCELLED, f"vetoed: {vetoed}", CancelCode.VETOED)
            payload = action.render(context)
        except RefusedError as exc:
            return Ending(ActionState.CANCELLED, str(exc), CancelCode.REFUSED)
        except RenderError as exc:
            return Ending(ActionState.DEAD, f"cannot render: {scrub(str(exc))}")
        except Exception as exc:  # a plugin's or template's bug fails this action, not the run
            trace = scrub(traceback.format_exc())  # a frame's text may hold the debtor's data
            log.error("action %s: unexpected error while rendering\n%s", row.key, trace)
            error = f"cannot render: unexpected {type(exc).__name__}: {scrub(str(exc))}"
            return Ending(ActionState.DEAD, error)
        return Composed(payload, [line.invoice_id for line in rebuilt.lines], dropped)
