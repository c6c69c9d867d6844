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
