"""SMS (``type = "sms"``): short dunning texts through CM.com, Bird or Twilio.

Rendering is the same for every provider and pure: the step template's ``text`` block, its
whitespace normalised, measured in GSM-7 septets or UCS-2 code units. A text longer than
``max_segments`` fails the render, not the send, so the template is fixed once instead of
failing at every debtor. The recipient is the debtor's first mobile number.

Sending goes through one :class:`~debsync.actions.sms.gateway.Gateway` per provider over one
``httpx.AsyncClient`` per batch (:mod:`debsync.actions.http`). No provider deduplicates on a
key of ours, so the action is not idempotent: every failure is classified by whether the
message can have left (retry later, never, channel down, in doubt), and the outbox key travels
as the provider's ``reference`` where there is one (CM, Bird), so a delivery report can be
matched to its action even without the provider's id.

Delivery reports: :meth:`SmsAction.parse_delivery_report` turns a provider's callback, exactly
as an HTTP endpoint received it, into :class:`DeliveryReport` records after checking the
provider's signature; :meth:`SmsAction.fetch_status` asks the provider (Bird, Twilio) for a
message's current state. Neither ever logs or returns a phone number.

The package, one concept a module: :mod:`.encoding` (GSM-7, UCS-2, segments), :mod:`.settings`,
:mod:`.reports` (delivery reports and the providers' signatures), :mod:`.gateway` (what every
provider shares), :mod:`.cm`, :mod:`.bird`, :mod:`.twilio`, and :mod:`.action`. This module is
the plugin (``debsync.plugins.DEFAULT_PLUGINS``) and re-exports what callers use.
"""

from __future__ import annotations

from debsync.actions.base import InboundRequest
from debsync.actions.sms.action import SmsAction, debsync_register_actions
from debsync.actions.sms.cm import cm_reference
from debsync.actions.sms.encoding import measure, normalise_text
from debsync.actions.sms.reports import (
    DeliveryReport,
    DeliveryReportError,
    SignatureError,
    twilio_signature,
)
from debsync.actions.sms.settings import SmsSettings

__all__ = [
    "DeliveryReport",
    "DeliveryReportError",
    "InboundRequest",
    "SignatureError",
    "SmsAction",
    "SmsSettings",
    "cm_reference",
    "debsync_register_actions",
    "measure",
    "normalise_text",
    "twilio_signature",
]
