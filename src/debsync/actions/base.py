"""The action contract: a channel that carries out one dunning step for one debtor.

The outbox, not the action, owns retries, leases and the in-doubt state; an action only renders
a payload (pure, used by previews) and sends it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict


class ActionSettings(BaseModel):
    """Base of every action's settings: unknown keys in ``connectors.toml`` are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Receipt:
    """What the channel said when it accepted a message (provider id, status, details)."""

    provider_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


ActionSettingsT = TypeVar("ActionSettingsT", bound=ActionSettings)


class Action(ABC, Generic[ActionSettingsT]):
    """Base class of every action type.

    :cvar type_name: the ``type = "..."`` value of ``[actions.<instance>]``.
    :cvar Settings: pydantic model validating the instance's table.
    :cvar channel: ``"email"``, ``"sms"``, ``"letter"``, ``"call"``, ``"agency"``, ``"webhook"``…
    :cvar idempotent: ``True`` only when sending the same payload twice with the same
        idempotency key cannot reach the debtor twice; the outbox then retries in-doubt sends.
    """

    type_name: ClassVar[str]
    Settings: ClassVar[type[ActionSettings]]
    channel: ClassVar[str]
    idempotent: ClassVar[bool] = False

    def __init__(self, instance: str, settings: ActionSettingsT) -> None:
        self.instance = instance
        self.settings = settings

    @abstractmethod
    def render(self, context: Mapping[str, Any]) -> Any:
        """Build the payload from the context the core assembled. Pure: no I/O."""

    @abstractmethod
    async def send(self, payload: Any, idempotency_key: str) -> Receipt:
        """Deliver the payload; raise a retryable or permanent error on failure."""
