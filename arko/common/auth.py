"""Names and checks both daemons share when they prove who they are."""

from __future__ import annotations

import hmac

# Metadata the master sends on every call to a slave: the slave's call secret.
SECRET_HEADER = "arko-slave-secret"


def tokens_match(expected: str | bytes, presented: str | bytes) -> bool:
    """Constant-time comparison, so timing says nothing about the secret."""
    a = expected.encode() if isinstance(expected, str) else expected
    b = presented.encode() if isinstance(presented, str) else presented
    return hmac.compare_digest(a, b)
