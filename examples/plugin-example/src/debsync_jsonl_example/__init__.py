"""Example debsync plugin: both types register through the same hooks as debsync's own."""

from __future__ import annotations

from typing import Any

import debsync
from debsync_jsonl_example.action import ChatWebhookAction
from debsync_jsonl_example.connector import JsonLinesConnector

__all__ = ["ChatWebhookAction", "JsonLinesConnector"]


@debsync.hookimpl
def debsync_register_connectors(register: Any) -> None:
    register(JsonLinesConnector)


@debsync.hookimpl
def debsync_register_actions(register: Any) -> None:
    register(ChatWebhookAction)
