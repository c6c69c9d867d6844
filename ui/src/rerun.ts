// Re-running a job from its record: the same method, params and args.
//
// A record keeps what the caller sent, except values under a secret-looking
// name, which the master stored as "***": those are gone, and sending "***"
// back would run the job with a wrong value, so such a job cannot be re-run
// from its record. A `${secret:NAME}` reference is kept as sent (the master
// substitutes the secret on the way to the slave), so it re-runs fine.
import type { Job, NewJob } from "./api";

/** What the master stores in place of a hidden value. */
export const REDACTED = "***";

/** The body of POST /api/v1/jobs that runs `job` again. */
export function rerunBody(job: Job): NewJob {
  const body: NewJob = { method: job.method, params: { ...job.params } };
  if (job.args && Object.keys(job.args).length) body.args = job.args;
  return body;
}

/**
 * Where the record holds a hidden value, as paths (`params.password`,
 * `args.deploy.token`, `args.hosts[1]`): empty when the job can be re-run.
 *
 * A param may hold a message as JSON text, redacted inside; it is looked into too.
 */
export function hiddenValues(job: Pick<Job, "params" | "args">): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(job.params ?? {})) walk(value, `params.${name}`, found, true);
  for (const [name, value] of Object.entries(job.args ?? {})) walk(value, `args.${name}`, found, false);
  return found;
}

function walk(value: unknown, path: string, found: string[], parseText: boolean): void {
  if (value === REDACTED) {
    found.push(path);
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => walk(item, `${path}[${i}]`, found, false));
  } else if (value && typeof value === "object") {
    for (const [name, inner] of Object.entries(value)) walk(inner, `${path}.${name}`, found, false);
  } else if (parseText && typeof value === "string" && /^\s*[[{]/.test(value)) {
    try {
      walk(JSON.parse(value) as unknown, path, found, false);
    } catch {
      // plain text that starts with a bracket: no hidden value in it
    }
  }
}

/** Why the Re-run button is disabled, or "" when it is not. */
export function rerunBlocker(job: Pick<Job, "params" | "args">): string {
  const hidden = hiddenValues(job);
  if (!hidden.length) return "";
  return (
    `This job cannot be re-run from its record: ${hidden.join(", ")} ` +
    `${hidden.length === 1 ? "was" : "were"} hidden (***) when it was recorded, and a hidden value ` +
    "cannot be sent again. Run the method afresh, or pass secrets as ${secret:NAME}, which re-runs."
  );
}
