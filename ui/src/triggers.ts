// The master's triggers and schedules (GET /api/v1/triggers), typed; kept
// apart from api.ts so the page's client is one small module of its own.
import { call, type Fetch, type Job } from "./api";

export interface Trigger {
  /** What its jobs carry: "hook:NAME" or "schedule:NAME". */
  trigger: string;
  name: string;
  /** The forge (github, gitlab, gitea, generic), or "schedule". */
  kind: string;
  method: string;
  /** A hook's path on the HTTP port. */
  path?: string;
  /** A schedule's cron and timezone, or its every. */
  when?: string;
  /** A schedule's next slot (RFC 3339). */
  next_time?: string;
  last_job?: Job;
}

export function listTriggers(fetcher: Fetch = fetch): Promise<Trigger[]> {
  return call<{ triggers?: Trigger[] }>("/api/v1/triggers", {}, fetcher).then(
    (r) => r.triggers ?? [],
  );
}

/** "/hooks/NAME" for a webhook, "every 15m" or "0 3 * * * (UTC)" for a schedule. */
export function firesOn(t: Trigger): string {
  return t.kind === "schedule" ? (t.when ?? "") : `POST ${t.path ?? ""}`;
}
