"""The Celery peer: one trivial task on a Redis broker and result backend.

The worker is started as ``celery -A bench.celery_app worker`` with
``BENCH_REDIS_URL`` naming the bench's own Redis; the load generator builds
its client with :func:`make_app` and sends the task by name, so both sides
agree only on ``TASK_NAME`` -- as separate services would.
"""

from __future__ import annotations

import os

from celery import Celery  # type: ignore[import-untyped]

TASK_NAME = "bench.echo"


def make_app(redis_url: str) -> Celery:
    """A Celery app on ``redis://host:port``: db 0 as broker, db 1 as result backend."""
    base = redis_url.rstrip("/")
    app = Celery("bench", broker=f"{base}/0", backend=f"{base}/1")
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=600,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name=TASK_NAME)  # type: ignore[untyped-decorator]
    def echo(text: str) -> str:
        """The job: as trivial as ``MyPipeline.DryRun``."""
        return f"job execution done: {text}"

    return app


# ``celery -A bench.celery_app`` needs a module-level app; only the worker uses it.
app = make_app(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379"))
