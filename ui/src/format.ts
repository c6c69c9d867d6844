// Small display helpers shared by the pages.
import type { Job } from "./api";

/** "850 ms", "4.2 s", "3 min 5 s", "2 h 1 min": how long a job ran (or runs, until `now`). */
export function duration(job: Pick<Job, "started_at" | "created_at" | "ended_at">, now = Date.now()): string {
  const from = job.started_at ?? job.created_at;
  if (!from) return "";
  const end = job.ended_at ? Date.parse(job.ended_at) : now;
  const ms = Math.max(0, end - Date.parse(from));
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A job's output line for people: a LogLine's text when it has one, else the JSON. */
export function outputLine(output: string): string {
  try {
    const value = JSON.parse(output) as unknown;
    if (value && typeof value === "object" && "text" in value) {
      return String((value as { text: unknown }).text);
    }
    return JSON.stringify(value);
  } catch {
    return output;
  }
}

export function isFinal(state: string): boolean {
  return !["QUEUED", "RUNNING"].includes(state);
}

/** A record's time as "2026-12-04 17:20:01 UTC" (the same on every screen); "—" when unset. */
export function stamp(iso: string | undefined): string {
  if (!iso) return "—";
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return iso;
  return `${time.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** What started a job, in words: "API call", "child job", "webhook NAME", "schedule NAME". */
export function triggerText(trigger: string | undefined): string {
  const [kind, ...rest] = (trigger || "api").split(":");
  const name = rest.join(":");
  switch (kind) {
    case "api":
      return "API call";
    case "job":
      return "child job";
    case "hook":
      return `webhook ${name}`;
    case "schedule":
      return `schedule ${name}`;
    default:
      return trigger ?? "";
  }
}

/** A job's error for a table cell: "CODE: message", cut to `max` characters. */
export function errorText(job: Pick<Job, "code" | "error">, max = 120): string {
  if (!job.error) return "";
  const text = job.code ? `${job.code}: ${job.error}` : job.error;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
