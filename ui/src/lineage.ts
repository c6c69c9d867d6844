// A job's children as a tree. The API lists one level at a time
// (GET /api/v1/jobs?parent_id=ID), so the tree is fetched level by level and
// built here; the job page shows it and refreshes it while any job of it runs.
import { api, type Job, type JobPage, type JobQuery } from "./api";
import { isFinal } from "./format";

export interface JobNode {
  job: Job;
  children: JobNode[];
}

/** Children listed per request: the API's largest page, so most levels take one call. */
const PAGE_SIZE = 1000;
/** How deep the walk goes; the master refuses nesting past --max_job_depth (8 by default). */
export const MAX_DEPTH = 32;

export type ListJobs = (query: JobQuery) => Promise<JobPage>;

/**
 * Nodes for `parentId`'s children out of a flat list of records, oldest first
 * (the order they were started), each with its own children found the same way.
 *
 * A record whose parent is not in the list is left out, and a cycle (which
 * the master never makes) cannot loop: a job is placed once.
 */
export function buildTree(parentId: string, jobs: Job[]): JobNode[] {
  const byParent = new Map<string, Job[]>();
  for (const job of jobs) {
    const parent = job.parent_id ?? "";
    if (!parent) continue;
    byParent.set(parent, [...(byParent.get(parent) ?? []), job]);
  }
  const placed = new Set<string>([parentId]);
  const grow = (id: string): JobNode[] =>
    [...(byParent.get(id) ?? [])]
      .sort((a, b) => (a.created_at ?? "").localeCompare(b.created_at ?? "") || a.id.localeCompare(b.id))
      .filter((job) => !placed.has(job.id) && placed.add(job.id))
      .map((job) => ({ job, children: grow(job.id) }));
  return grow(parentId);
}

/** Every record under `rootId`, fetched one level at a time (each level's calls together). */
export async function fetchDescendants(rootId: string, list: ListJobs = api.jobs): Promise<Job[]> {
  const found: Job[] = [];
  let level = [rootId];
  for (let depth = 0; level.length && depth < MAX_DEPTH; depth++) {
    const pages = await Promise.all(level.map((id) => allChildren(id, list)));
    const children = pages.flat();
    found.push(...children);
    level = children.map((job) => job.id);
  }
  return found;
}

async function allChildren(parentId: string, list: ListJobs): Promise<Job[]> {
  const jobs: Job[] = [];
  let token = "";
  do {
    const page = await list({ parent_id: parentId, page_size: PAGE_SIZE, page_token: token });
    jobs.push(...page.jobs);
    token = page.next_page_token;
  } while (token);
  return jobs;
}

/** True while a job of the tree is queued or running: the page keeps refreshing it. */
export function anyInFlight(nodes: JobNode[]): boolean {
  return nodes.some((node) => !isFinal(node.job.state) || anyInFlight(node.children));
}

/** How many jobs the tree holds, at every level. */
export function countNodes(nodes: JobNode[]): number {
  return nodes.reduce((sum, node) => sum + 1 + countNodes(node.children), 0);
}

/** Characters of a child's inputs shown on its tree line (as `arko job ID` shows them). */
export const INPUTS_WIDTH = 48;

/**
 * A child's plain inputs as `k=v`, which tell siblings of one method apart
 * (a pipeline's steps are all `arko.v1.Steps.Run`: `step=lint`, `step=test`).
 * Nested values are left out; a long line is cut with an ellipsis.
 */
export function inputsSummary(job: Job, width = INPUTS_WIDTH): string {
  const pairs: Record<string, string> = { ...job.params };
  for (const [key, value] of Object.entries(job.args ?? {})) {
    if (["string", "number", "boolean"].includes(typeof value)) pairs[key] = String(value);
  }
  const text = Object.keys(pairs)
    .sort()
    .map((key) => `${key}=${pairs[key]}`)
    .join(" ");
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
