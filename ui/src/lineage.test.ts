import { describe, expect, it } from "vitest";
import type { Job, JobQuery } from "./api";
import { anyInFlight, buildTree, countNodes, fetchDescendants, inputsSummary } from "./lineage";

function job(id: string, parent_id: string, state: Job["state"] = "SUCCEEDED", created_at = "2026-01-01T00:00:00Z"): Job {
  return { id, parent_id, state, created_at, method: `M.${id}`, params: {}, slave: "", code: "", error: "", result: "", cancelled_by: "" };
}

describe("buildTree", () => {
  it("nests a flat list under its parents, oldest child first", () => {
    const flat = [
      job("b", "root", "SUCCEEDED", "2026-01-01T00:00:02Z"),
      job("a", "root", "SUCCEEDED", "2026-01-01T00:00:01Z"),
      job("a1", "a"),
      job("a1x", "a1", "RUNNING"),
      job("stray", "elsewhere"),
    ];
    const tree = buildTree("root", flat);
    expect(tree.map((n) => n.job.id)).toEqual(["a", "b"]);
    expect(tree[0]?.children[0]?.job.id).toBe("a1");
    expect(tree[0]?.children[0]?.children[0]?.job.id).toBe("a1x");
    expect(tree[1]?.children).toEqual([]);
    expect(countNodes(tree)).toBe(4);
  });

  it("places a job once even if records loop", () => {
    const tree = buildTree("root", [job("a", "root"), job("b", "a"), { ...job("a", "b") }]);
    expect(countNodes(tree)).toBe(2);
  });

  it("is empty for a job without children", () => {
    expect(buildTree("root", [job("x", "other")])).toEqual([]);
  });
});

describe("anyInFlight", () => {
  it("sees a queued or running job at any depth", () => {
    expect(anyInFlight(buildTree("r", [job("a", "r"), job("b", "a")]))).toBe(false);
    expect(anyInFlight(buildTree("r", [job("a", "r"), job("b", "a", "QUEUED")]))).toBe(true);
    expect(anyInFlight(buildTree("r", [job("a", "r", "RUNNING")]))).toBe(true);
  });
});

describe("fetchDescendants", () => {
  it("asks level by level with parent_id, following pages", async () => {
    const asked: JobQuery[] = [];
    const db: Record<string, Job[]> = {
      r: [job("a", "r"), job("b", "r")],
      a: [job("a1", "a")],
    };
    const list = async (query: JobQuery) => {
      asked.push(query);
      const all = db[query.parent_id ?? ""] ?? [];
      // One record a page, so a parent with two children takes two calls.
      const from = Number(query.page_token || 0);
      const page = all.slice(from, from + 1);
      return { jobs: page, next_page_token: from + 1 < all.length ? String(from + 1) : "" };
    };
    const found = await fetchDescendants("r", list);
    expect(found.map((j) => j.id).sort()).toEqual(["a", "a1", "b"]);
    expect(asked.map((q) => `${q.parent_id}@${q.page_token}`)).toEqual(["r@", "r@1", "a@", "b@", "a1@"]);
    expect(buildTree("r", found).map((n) => n.job.id)).toEqual(["a", "b"]);
  });
});

describe("inputsSummary", () => {
  it("names a step by its plain inputs and leaves nested ones out", () => {
    const step = { ...job("a", "root"), args: { step: "lint", params: { x: "1" } } };
    expect(inputsSummary(step)).toBe("step=lint");
  });

  it("sorts params and args together and cuts a long line", () => {
    const long = { ...job("b", "root"), params: { tag: "v1" }, args: { n: 2, w: "y".repeat(60) } };
    const text = inputsSummary(long);
    expect(text.startsWith("n=2 tag=v1 w=yyy")).toBe(true);
    expect(text.length).toBe(48);
    expect(text.endsWith("…")).toBe(true);
  });
});
