// Server-Sent Events read through fetch, so the client token can travel in
// the Authorization header (EventSource cannot send headers).
import { ApiError, failure, headers, type Fetch, type JobEvent } from "./api";

export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

/** An incremental text/event-stream parser: feed it chunks, get whole messages back. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private id = "";
  private event = "";

  feed(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    let end: number;
    while ((end = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, end);
      const newline = this.buffer.startsWith("\r\n", end) ? 2 : 1;
      this.buffer = this.buffer.slice(end + newline);
      if (line === "") {
        if (this.data.length) {
          out.push({ id: this.id, event: this.event || "message", data: this.data.join("\n") });
        }
        this.data = [];
        this.event = "";
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the server's keep-alive ping
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.data.push(value);
      else if (field === "id") this.id = value;
      else if (field === "event") this.event = value;
    }
    return out;
  }
}

const RETRIES = 5;

/**
 * Follow a job's events until FINISHED. A dropped connection is resumed
 * after the last event seen (Last-Event-ID), a few times, one second apart.
 */
export async function followJob(
  id: string,
  onEvent: (event: JobEvent) => void,
  signal: AbortSignal,
  fetcher: Fetch = fetch,
): Promise<void> {
  let last = "";
  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    let response: Response;
    try {
      response = await fetcher(`/api/v1/jobs/${encodeURIComponent(id)}/events`, {
        headers: headers(last ? { "Last-Event-ID": last } : {}),
        signal,
      });
    } catch (error) {
      if (signal.aborted) return;
      if (attempt === RETRIES) {
        throw new ApiError("unreachable", "The master cannot be reached to follow this job.");
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    if (!response.ok || !response.body) throw await failure(response);
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const message of parser.feed(value)) {
          last = message.id || last;
          const event = JSON.parse(message.data) as JobEvent;
          onEvent(event);
          if (event.kind === "FINISHED") return;
        }
      }
    } catch {
      if (signal.aborted) return;
    }
  }
}
