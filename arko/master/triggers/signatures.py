"""Each forge's proof that a delivery is theirs, checked in constant time.

github ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``;
gitlab ``X-Gitlab-Token: <secret>``; gitea ``X-Gitea-Signature: <hex>``;
generic ``X-Arko-Signature-256: sha256=<hex>``. The HMAC is over the exact
bytes received, before any parsing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from arko.master.triggers.config import Forge


@dataclass(frozen=True, slots=True)
class ForgeHeaders:
    """The headers one forge names its signature, event and delivery id with."""

    signature: str
    event: str
    delivery: str
    prefix: str  # before the hex digest; "" for gitea; unused for gitlab's token


HEADERS: dict[Forge, ForgeHeaders] = {
    "github": ForgeHeaders("X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery", "sha256="),
    "gitlab": ForgeHeaders("X-Gitlab-Token", "X-Gitlab-Event", "X-Gitlab-Event-UUID", ""),
    "gitea": ForgeHeaders("X-Gitea-Signature", "X-Gitea-Event", "X-Gitea-Delivery", ""),
    "generic": ForgeHeaders("X-Arko-Signature-256", "X-Arko-Event", "X-Arko-Delivery", "sha256="),
}


def sign(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` under ``secret``, as the forges send it."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verified(forge: Forge, secret: bytes, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the delivery carries the right proof for ``forge``.

    Every comparison is :func:`hmac.compare_digest`, so the time taken says
    nothing of how much of a guess was right.
    """
    names = HEADERS[forge]
    given = headers.get(names.signature)
    if given is None:
        return False
    given_bytes = given.strip().encode("utf-8", "replace")
    if forge == "gitlab":
        return hmac.compare_digest(given_bytes, secret)
    expected = (names.prefix + sign(secret, body)).encode()
    return hmac.compare_digest(given_bytes.lower(), expected)
