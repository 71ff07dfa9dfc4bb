"""Call tasks: a step on the ``call`` channel puts a call on a person's list, not a message.

Sending files the task in debsync's call queue (the outbox row itself); ``debsync calls``
lists the open ones with the debtor's numbers, the open invoices, the total and the last
contacts, and ``debsync calls done`` records the outcome (``debsync.outbox.calls``): a
promise to pay pauses the ladder until the promised date, a dispute until it is resolved.
A third-party action on the ``call`` channel can file the task in a CRM or a dialler instead.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from debsync import hookimpl
from debsync.actions.base import (
    Action,
    ActionSettings,
    MessageContext,
    Payload,
    Receipt,
    RenderError,
)
from debsync.hookspecs import RegisterAction


class CallSettings(ActionSettings):
    assignee: str | None = Field(
        default=None, description="Who makes these calls; shown by `debsync calls`."
    )


class CallAction(Action[CallSettings]):
    type_name: ClassVar[str] = "call"
    Settings: ClassVar[type[ActionSettings]] = CallSettings
    channel: ClassVar[str] = "call"
    idempotent: ClassVar[bool] = True  # filing the same task twice files it once
    uses_templates: ClassVar[bool] = True

    def render(self, context: MessageContext) -> Payload:
        if not context.debtor.phones:
            raise RenderError(f"debtor {context.debtor.external_id} has no phone number")
        script = self.env.templates.blocks("call", context, ["script"])["script"]
        return {
            "debtor_id": context.debtor.external_id,
            "debtor_name": context.debtor.name,
            "phones": list(context.debtor.phones),
            "language": context.language.value,
            "currency": context.currency,
            "invoices": [
                {
                    "number": line.number,
                    "due_date": line.due_date.isoformat(),
                    "days_overdue": line.days_overdue,
                    "open": str(line.open_amount),
                }
                for line in context.invoices
            ],
            "principal": str(context.principal),
            "total": str(context.total),
            "script": script,
            "assignee": self.settings.assignee,
        }

    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        return Receipt(
            provider_id=f"call-{idempotency_key[:12]}",
            details={"queue": "debsync calls", "assignee": payload.get("assignee")},
        )

    def preview(self, payload: Payload) -> str:
        numbers = ", ".join(payload["phones"])
        lines = [f"call {payload['debtor_name']} ({payload['debtor_id']}) on {numbers}"]
        lines += [
            f"  {i['number']}: due {i['due_date']} ({i['days_overdue']} days ago), open {i['open']}"
            for i in payload["invoices"]
        ]
        lines += ["", payload["script"]]
        return "\n".join(lines)


@hookimpl
def debsync_register_actions(register: RegisterAction) -> None:
    register(CallAction)
