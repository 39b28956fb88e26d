"""Stable keys for everything an RbacMapping writes: what the inventory and plans name.

Every row the driver can create has one readable key, unique across the five tables:
`permission:study:read`, `role:study-reader`, `role-permission:study-reader/study:read`,
`subject:dept:SEOUL/RADIOLOGY`, and for a binding the sentence it stands for,
`dept:SEOUL/RADIOLOGY → study-reader @ acl:ACL-001` (no `@ …` for a global binding).
Role and permission names cannot hold `/`, ` → ` or ` @ ` (the spec model refuses them);
subjects and scopes come from templates and facts, so `usable` rejects the two
separators there: a key must never be read two ways, or ownership would be too.
"""

from __future__ import annotations

BindingKey = tuple[str, str, str | None]
"""(subject, role, scope); scope None is a global binding."""

ARROW = " → "
AT = " @ "


def permission_key(name: str) -> str:
    return f"permission:{name}"


def role_key(name: str) -> str:
    return f"role:{name}"


def role_permission_key(role: str, permission: str) -> str:
    return f"role-permission:{role}/{permission}"


def subject_key(name: str) -> str:
    return f"subject:{name}"


def binding_key(binding: BindingKey) -> str:
    subject, role, scope = binding
    return f"{subject}{ARROW}{role}" + (f"{AT}{scope}" if scope is not None else "")


def grant_text(binding: BindingKey) -> str:
    """The binding without its subject (plans list them per subject)."""
    _, role, scope = binding
    return role + (f"{AT}{scope}" if scope is not None else "")


def usable(text: str) -> bool:
    """Whether a subject or scope can be part of a key."""
    return bool(text) and ARROW not in text and AT not in text and text == text.strip()
