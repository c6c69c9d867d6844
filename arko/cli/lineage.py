"""A job's children as a tree: fetched level by level through ``Jobs/List`` by parent.

The master lists one level at a time (``ListJobsRequest.parent_id``), so
``arko job ID`` asks again for each child; the tree is printed under the
record, one line a job (state, method, id, slave), and nested in ``--json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from arko.cli.client import Stubs
from arko.cli.render import as_dict, wire
from arko.v1 import jobs_pb2

# The master's largest page: most levels take one call.
_PAGE = 1000
# How deep the walk goes; the master refuses nesting past --max_job_depth (8 by default).
MAX_DEPTH = 32


@dataclass
class Node:
    """One job of a tree and the jobs it started, oldest first."""

    job: jobs_pb2.Job
    children: list[Node] = field(default_factory=list)


def _children(stubs: Stubs, parent_id: str) -> list[jobs_pb2.Job]:
    """Every child of ``parent_id``, all pages, in the order they were started."""
    found: list[jobs_pb2.Job] = []
    token = ""
    while True:
        request = jobs_pb2.ListJobsRequest(parent_id=parent_id, page_size=_PAGE, page_token=token)
        reply = stubs.jobs.List(request, **stubs.options())
        found.extend(reply.jobs)
        token = reply.next_page_token
        if not token:
            break
    # The list is newest first; a tree reads in the order the parent started them.
    return sorted(found, key=lambda j: (j.created_at.ToNanoseconds(), j.id))


def fetch_tree(stubs: Stubs, job_id: str) -> list[Node]:
    """The children of ``job_id``, each with its own, down to :data:`MAX_DEPTH` levels.

    A job is placed once, so records that loop (which the master never makes)
    cannot make the walk loop.
    """
    seen = {job_id}

    def grow(parent_id: str, depth: int) -> list[Node]:
        if depth >= MAX_DEPTH:
            return []
        nodes = []
        for child in _children(stubs, parent_id):
            if child.id in seen:
                continue
            seen.add(child.id)
            nodes.append(Node(child, grow(child.id, depth + 1)))
        return nodes

    return grow(job_id, 0)


# Characters of a child's inputs shown on its tree line.
INPUTS_WIDTH = 48


def _inputs(job: jobs_pb2.Job, width: int = INPUTS_WIDTH) -> str:
    """A child's plain inputs as ``k=v``, which tell siblings of one method apart
    (``step=lint``, ``step=test``); nested values are left out, the line is cut."""
    pairs = dict(job.params)
    for key, value in job.args.items():
        if isinstance(value, str | int | float | bool):
            pairs[key] = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(f"{k}={v}" for k, v in sorted(pairs.items()))
    return text if len(text) <= width else text[: width - 1] + "…"


def tree_lines(nodes: list[Node], indent: str = "") -> list[str]:
    """``├─ STATE  Method  id  slave  k=v…`` a line, children indented under their parent."""
    lines = []
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        job = node.job
        state = jobs_pb2.JobState.Name(job.state)
        parts = [state.ljust(11), wire(job.method), wire(job.id), wire(job.slave) or "-"]
        if inputs := _inputs(job):
            parts.append(wire(inputs))
        lines.append(f"{indent}{'└─' if last else '├─'} {'  '.join(parts)}")
        lines += tree_lines(node.children, indent + ("   " if last else "│  "))
    return lines


def tree_dicts(nodes: list[Node]) -> list[dict[str, Any]]:
    """The tree for ``--json``: each child's record with its own ``children``."""
    return [{**as_dict(node.job), "children": tree_dicts(node.children)} for node in nodes]
