"""GitHub commit statuses for jobs a github trigger started.

For a trigger with ``status_token_file``, each job it starts is followed
through its events: ``pending`` when a slave starts it, then ``success``,
``failure`` or ``error`` when it ends, posted in that order to
``<api_url>/repos/<owner>/<repo>/statuses/<sha>`` with the context
``arko/<trigger>`` and a link to the job's page. A post that fails is logged
and retried with a capped backoff; it never touches the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import structlog

from arko.master.jobs.live import FINISHED, STARTED, Event
from arko.master.jobs.state import JobState
from arko.master.triggers.hooks import Trigger

log = structlog.get_logger("arko.master.triggers.statuses")

Watch = Callable[[str, int], AsyncIterator[Event]]

_FINAL_STATUS = {JobState.SUCCEEDED: "success", JobState.FAILED: "failure"}
_DESCRIPTION = {
    "pending": "running",
    "success": "succeeded",
    "failure": "failed",
    "error": "cancelled or interrupted",
}
ATTEMPTS = 6
_BACKOFF_MAX = 30.0


def commit_of(payload: Any) -> tuple[str, str] | None:
    """(owner/repo, sha) of a push payload; None when it names no commit."""
    if not isinstance(payload, dict):
        return None
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    sha = payload.get("after")
    if not isinstance(full_name, str) or not isinstance(sha, str) or not sha.strip("0"):
        return None  # a deleted branch's "after" is all zeros: no commit to mark
    return full_name, sha


# Seconds a stopping master gives the statuses still being posted.
CLOSE_GRACE = 5.0


class CommitStatuses:
    """Follows hook jobs and posts their statuses; :meth:`close` ends what is left.

    Args:
        watch: A job's events from a sequence number (the job core's ``watch``).
        public_url: Where users browse the web UI; statuses link to its job page.
        backoff: Seconds before the first retry, doubled each time (capped).
    """

    def __init__(self, watch: Watch, public_url: str, backoff: float = 1.0) -> None:
        self._watch = watch
        self._public_url = public_url.rstrip("/")
        self._backoff = backoff
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def started(self, trigger: Trigger, job_id: str, payload: Any) -> None:
        """A delivery started ``job_id``: follow it when the trigger posts statuses."""
        if trigger.status_token is None:
            return
        commit = commit_of(payload)
        if commit is None:
            log.info(
                "commit_status_skipped",
                trigger=trigger.spec.name,
                job_id=job_id,
                reason="the payload names no repository.full_name and after",
            )
            return
        task = asyncio.create_task(
            self._follow(trigger, job_id, *commit), name=f"commit-status-{job_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, trigger: Trigger, job_id: str, repo: str, sha: str) -> None:
        async for event in self._watch(job_id, 0):
            if event.kind == STARTED:
                await self._post(trigger, job_id, repo, sha, "pending")
            elif event.kind == FINISHED:
                state = _FINAL_STATUS.get(event.state, "error")
                await self._post(trigger, job_id, repo, sha, state)
                return

    async def _post(self, trigger: Trigger, job_id: str, repo: str, sha: str, state: str) -> None:
        """POST one status, retrying with backoff; give up (logged) after :data:`ATTEMPTS`."""
        spec = trigger.spec
        url = f"{spec.api_url.rstrip('/')}/repos/{repo}/statuses/{sha}"
        body = {
            "state": state,
            "context": f"arko/{spec.name}",
            "description": f"arko job {_DESCRIPTION[state]}",
        }
        if self._public_url:
            body["target_url"] = f"{self._public_url}/jobs/{job_id}"
        headers = {
            "Authorization": f"Bearer {trigger.status_token}",
            "Accept": "application/vnd.github+json",
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        delay = self._backoff
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self._session.post(url, json=body, headers=headers) as response:
                    if response.status < 300:
                        log.info("commit_status_posted", job_id=job_id, state=state, sha=sha)
                        return
                    error = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "commit_status_failed",
                job_id=job_id,
                state=state,
                url=url,
                attempt=attempt,
                error=error,
            )
            if attempt < ATTEMPTS:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
        log.error("commit_status_given_up", job_id=job_id, state=state, url=url)

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """Post what is left within ``grace`` seconds, then stop; close the HTTP client.

        The master closes this once its jobs have ended, so each follower has
        only its final status left to post: a forge whose commit stays
        "pending" forever would be worse than a shutdown a few seconds longer.
        Idempotent.
        """
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                log.warning("commit_status_abandoned", task=task.get_name(), grace=grace)
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
