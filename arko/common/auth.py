"""Names and checks both daemons share when they prove who they are."""

from __future__ import annotations

import hmac

# Metadata the master sends on every call to a slave: the slave's call secret.
SECRET_HEADER = "arko-slave-secret"
# Metadata the master sends on every call to a slave: its own name, so a
# slave's log says which of several masters asked.
MASTER_HEADER = "arko-master"
# Metadata the master sends with each job to an arko slave, and the slave's
# SDK sends back when the job starts children: the job's id and its job
# token; and, from the master, the address its jobs reach it at (may be "").
JOB_ID_HEADER = "arko-job-id"
JOB_TOKEN_HEADER = "arko-job-token"
JOB_MASTER_HEADER = "arko-job-master"


def tokens_match(expected: str | bytes, presented: str | bytes) -> bool:
    """Constant-time comparison, so timing says nothing about the secret."""
    a = expected.encode() if isinstance(expected, str) else expected
    b = presented.encode() if isinstance(presented, str) else presented
    return hmac.compare_digest(a, b)


def call_secret(join_token: str, nonce: str) -> str:
    """The call secret of a slave that started with ``nonce``, for masters that know the token.

    An HMAC of the nonce under the join token: the database keeps only the
    nonce, which is no credential on its own, yet every master holding the
    join token can call every slave, whichever master it registered with.
    """
    digest = hmac.new(join_token.encode(), b"arko-call-secret:" + nonce.encode(), "sha256")
    return digest.hexdigest()
