"""Who may do what in the console: four roles, each allowed what the ones below it are."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """viewer < operator (calls, pauses) < approver (approvals, handoffs) < admin (users)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


ORDER = tuple(Role)


def allows(have: str, need: Role) -> bool:
    """Whether a user of role ``have`` may do what ``need`` guards; an unknown role (a
    store edited by hand) may do nothing."""
    return have in ORDER and ORDER.index(Role(have)) >= ORDER.index(need)


def role_problem(role: str) -> str | None:
    """Why ``role`` is not one, for a person to read; None when it is."""
    return None if role in ORDER else f"role {role!r}: one of {', '.join(ORDER)}"
