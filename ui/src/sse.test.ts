import { describe, expect, it } from "vitest";
import { SseParser, followJob } from "./sse";
import type { JobEvent } from "./api";

describe("SseParser", () => {
  it("joins messages split across chunks and skips keep-alive comments", () => {
    const parser = new SseParser();
    expect(parser.feed("id: 0\nda")).toEqual([]);
    expect(parser.feed('ta: {"a":1}\n\n: ping\n\nid: 1\r\ndata: x\r\ndata: y\r\n\r\n')).toEqual([
      { id: "0", event: "message", data: '{"a":1}' },
      { id: "1", event: "message", data: "x\ny" },
    ]);
  });
});

function stream(text: string): Response {
  return new Response(new Blob([text]).stream(), {
    headers: { "Content-Type": "text/event-stream" },
  });
}

describe("followJob", () => {
  it("resumes after the last event id when the stream drops before FINISHED", async () => {
    const seen: string[] = [];
    const asked: (string | null)[] = [];
    const answers = [
      'id: 0\ndata: {"kind":"ACCEPTED","state":"QUEUED"}\n\n',
      'id: 1\ndata: {"kind":"FINISHED","state":"SUCCEEDED"}\n\n',
    ];
    const fetcher = async (_: unknown, init?: RequestInit) => {
      asked.push(new Headers(init?.headers).get("Last-Event-ID"));
      return stream(answers.shift() ?? "");
    };
    await followJob("j", (e: JobEvent) => seen.push(e.kind), new AbortController().signal, fetcher as typeof fetch);
    expect(seen).toEqual(["ACCEPTED", "FINISHED"]);
    expect(asked).toEqual([null, "0"]);
  });

  it("reports a refused stream with the API's message", async () => {
    const fetcher = async () =>
      new Response(JSON.stringify({ error: { code: "NOT_FOUND", message: "no job x" } }), {
        status: 404,
      });
    await expect(
      followJob("x", () => undefined, new AbortController().signal, fetcher as typeof fetch),
    ).rejects.toThrow("The master refused the call: no job x");
  });
});
