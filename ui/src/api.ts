// The one typed client of the master's HTTP API. Every call goes through
// `call`, which turns the ways a call can fail into an ApiError whose message
// a person can act on: master unreachable, token refused, request refused.

export type JobState =
  | "QUEUED"
  | "RUNNING"
  | "SUCCEEDED"
  | "FAILED"
  | "CANCELLED"
  | "INTERRUPTED";

export const STATES: JobState[] = [
  "QUEUED",
  "RUNNING",
  "SUCCEEDED",
  "FAILED",
  "CANCELLED",
  "INTERRUPTED",
];

export interface Slave {
  address: string;
  status: "live" | "down" | "pending";
  methods: string[];
  capacity: number;
  running: number;
  labels: Record<string, string>;
  version: string;
}

export interface Method {
  name: string;
  slaves: string[];
  live: number;
}

export interface Field {
  name: string;
  json_name: string;
  type: string;
  repeated: boolean;
  required: boolean;
  secret: boolean;
  enum?: string[];
  message?: string;
  schema: unknown;
}

export interface MethodSchema {
  method: string;
  request_type: string;
  response_type: string;
  server_streaming: boolean;
  runnable: boolean;
  fields: Field[];
  policy: Record<string, unknown>;
}

export interface Job {
  id: string;
  method: string;
  params: Record<string, string>;
  args?: Record<string, unknown>;
  state: JobState;
  slave: string;
  created_at?: string;
  started_at?: string;
  ended_at?: string;
  code: string;
  error: string;
  result: string;
  cancelled_by: string;
  /** The job that started this one ("" for a top-level job). */
  parent_id?: string;
  /** What started it: "api", "job" (a child), "hook:NAME" or "schedule:NAME". */
  trigger?: string;
  depth?: number;
  outlive_parent?: boolean;
}

export interface JobPage {
  jobs: Job[];
  next_page_token: string;
}

export interface JobEvent {
  job_id: string;
  seq?: string;
  kind: "ACCEPTED" | "STARTED" | "OUTPUT" | "TRUNCATED" | "FINISHED";
  state: JobState;
  time?: string;
  output?: string;
  note?: string;
  job?: Job;
}

export interface Accepted {
  id: string;
  state: JobState;
  urls: Record<string, string>;
}

export type Failure = "unreachable" | "unauthenticated" | "refused";

/** A call that did not succeed, with a message meant for the person at the screen. */
export class ApiError extends Error {
  constructor(
    readonly failure: Failure,
    message: string,
    readonly status = 0,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

const TOKEN_KEY = "arko.token";

/**
 * The client token the master asked for, kept for this tab only (sessionStorage).
 *
 * A script injected into the page could read it from any storage, so what
 * matters is how long it lies around: sessionStorage keeps it across reloads
 * and deep links of this tab and drops it when the tab closes, where
 * localStorage kept it on disk, for every later visit and every tab.
 */
export function getToken(): string {
  return globalThis.sessionStorage?.getItem(TOKEN_KEY) ?? "";
}

export function setToken(token: string): void {
  if (token) globalThis.sessionStorage?.setItem(TOKEN_KEY, token);
  else globalThis.sessionStorage?.removeItem(TOKEN_KEY);
}

/** Drop the copy earlier versions of the UI left in localStorage, so no token stays on disk. */
export function forgetStoredToken(): void {
  globalThis.localStorage?.removeItem(TOKEN_KEY);
}

export function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = getToken();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

/** Turn a response that is not OK into an ApiError (the API's error body when it has one). */
export async function failure(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = (await response.json()) as { error?: { message?: string } };
    if (body.error?.message) message = body.error.message;
  } catch {
    // not the API's JSON: keep the status line
  }
  if (response.status === 401) {
    return new ApiError(
      "unauthenticated",
      `The master refused the call: it needs its client token. Enter it above. (${message})`,
      401,
    );
  }
  return new ApiError("refused", `The master refused the call: ${message}`, response.status);
}

export type Fetch = typeof fetch;

/** One JSON call; `fetcher` is replaceable in tests. */
export async function call<T>(
  path: string,
  init: RequestInit = {},
  fetcher: Fetch = fetch,
): Promise<T> {
  let response: Response;
  try {
    response = await fetcher(path, {
      ...init,
      headers: headers({ "Content-Type": "application/json", ...(init.headers as object) }),
    });
  } catch {
    throw new ApiError(
      "unreachable",
      "The master cannot be reached. Is it running, with --http_port, at this address?",
    );
  }
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

/** The body of POST /api/v1/jobs. */
export interface NewJob {
  method: string;
  params?: Record<string, string>;
  args?: Record<string, unknown>;
}

export interface JobQuery {
  method?: string;
  state?: string;
  parent_id?: string;
  page_size?: number;
  page_token?: string;
}

/** The query string of GET /api/v1/jobs, empty filters left out. */
export function jobQuery(query: JobQuery): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value) params.set(key, String(value));
  return params;
}

export const api = {
  slaves: () => call<{ slaves: Slave[] }>("/api/v1/slaves").then((r) => r.slaves),
  methods: () => call<{ methods: Method[] }>("/api/v1/methods").then((r) => r.methods),
  method: (name: string) => call<MethodSchema>(`/api/v1/methods/${encodeURIComponent(name)}`),
  jobs: (query: JobQuery, fetcher: Fetch = fetch) =>
    call<JobPage>(`/api/v1/jobs?${jobQuery(query)}`, {}, fetcher),
  job: (id: string) => call<Job>(`/api/v1/jobs/${encodeURIComponent(id)}`),
  /** A job from a method, string params and typed args (as arko.v1.Jobs/Run takes them). */
  create: (body: NewJob) =>
    call<Accepted>("/api/v1/jobs", { method: "POST", body: JSON.stringify(body) }),
  run: (method: string, body: Record<string, unknown>) =>
    call<Accepted>(`/api/v1/run/${encodeURIComponent(method)}`, {
      method: "POST",
      body: JSON.stringify(body),
    }),
  cancel: (id: string) =>
    call<Job>(`/api/v1/jobs/${encodeURIComponent(id)}/cancel`, {
      method: "POST",
      body: JSON.stringify({ reason: "cancelled in the web UI" }),
    }),
};
