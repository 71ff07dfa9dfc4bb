"""The letter channel's action: render and lay out the letter; a transport delivers the PDF.

The veertiendagenbrief's legal copy goes by post, and any other step may too. How the PDF then
leaves is the transport, a subclass that implements :meth:`LetterAction.deliver`: the built-in
print folder (:mod:`~debsync.actions.letter.print_folder`) or a hybrid-mail provider, a company
that prints and posts for you; see ``docs/actions/letter.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
from abc import abstractmethod
from dataclasses import replace
from typing import ClassVar, TypeVar

from pydantic import ValidationError

from debsync.actions.base import (
    Action,
    ActionSettings,
    MessageContext,
    Payload,
    PermanentActionError,
    Receipt,
    RenderError,
)
from debsync.actions.letter.content import LetterContent, letter_text, render_letter
from debsync.actions.letter.pdf import build_pdf

LetterSettingsT = TypeVar("LetterSettingsT", bound=ActionSettings)


class LetterAction(Action[LetterSettingsT]):
    """A letter channel: renders and lays out the letter; a subclass delivers the PDF.

    A transport implements :meth:`deliver` only. The receipt's ``content_sha256`` is always
    the hash of the PDF handed to :meth:`deliver`.
    """

    channel: ClassVar[str] = "letter"
    uses_templates: ClassVar[bool] = True

    def render(self, context: MessageContext) -> Payload:
        return render_letter(context, self.env.templates).model_dump(mode="json")

    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        try:
            pdf = await asyncio.to_thread(build_pdf, payload)
        except ValidationError:
            raise PermanentActionError(f"payload of {idempotency_key} is not a letter") from None
        except RenderError as exc:
            raise PermanentActionError(str(exc)) from None
        receipt = await self.deliver(pdf, payload, idempotency_key)
        return replace(receipt, content_sha256=hashlib.sha256(pdf).hexdigest())

    @abstractmethod
    async def deliver(self, pdf: bytes, payload: Payload, key: str) -> Receipt:
        """Hand the PDF to the transport and say what happened.

        Return ``dispatched=False`` while the letter still waits for a person to post it; a
        provider that posts it returns ``dispatched=True`` with the posting date as
        ``dispatched_on``, because the legal term counts from that date. Raise the
        :mod:`debsync.actions.base` errors as for any action.
        """

    def preview(self, payload: Payload) -> str:
        return letter_text(LetterContent.model_validate(payload))
