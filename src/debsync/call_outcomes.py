"""What came of a call to a debtor: the vocabulary the call tasks and ``debsync calls done``
share, kept apart from the outbox so the command line registers its options without loading
the store."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no-answer"
    PROMISED = "promised"
    DISPUTED = "disputed"
