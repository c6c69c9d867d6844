"""arko's benchmark suite: ``python -m bench`` (or ``make bench``).

Everything runs on loopback in one go, so every ratio compares figures taken
side by side on the same noisy machine: real daemons started through
``arko.testing``, a separate load-generator process driving them over gRPC,
and the peers (Celery + Redis, the naive per-job-reflection design) beside
them. See ``bench/README.md``.
"""
