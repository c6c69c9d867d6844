import { describe, expect, it } from "vitest";
import type { Job } from "./api";
import { hiddenValues, rerunBlocker, rerunBody } from "./rerun";

function job(params: Record<string, string>, args?: Record<string, unknown>): Job {
  return { id: "j", method: "Deploy.Run", params, args, state: "SUCCEEDED", slave: "", code: "", error: "", result: "", cancelled_by: "" };
}

describe("re-run eligibility", () => {
  it("allows a record with nothing hidden, secret references included", () => {
    const record = job({ ref: "main", key: "${secret:DEPLOY_KEY}" }, { target: "prod", token: "${secret:TOK}" });
    expect(hiddenValues(record)).toEqual([]);
    expect(rerunBlocker(record)).toBe("");
  });

  it("names every hidden value, at any depth and inside JSON params", () => {
    const record = job(
      { password: "***", config: '{"db":{"password":"***"},"name":"x"}', note: "[not json" },
      { deploy: { token: "***", hosts: ["a", "***"] } },
    );
    expect(hiddenValues(record)).toEqual([
      "params.password",
      "params.config.db.password",
      "args.deploy.token",
      "args.deploy.hosts[1]",
    ]);
    const why = rerunBlocker(record);
    expect(why).toContain("params.password");
    expect(why).toContain("cannot be sent again");
  });

  it("does not take *** inside a longer value for a hidden one", () => {
    expect(hiddenValues(job({ title: "*** release ***" }))).toEqual([]);
  });
});

describe("rerunBody", () => {
  it("sends the recorded method, params and args; no args when there were none", () => {
    expect(rerunBody(job({ a: "1" }, { n: 2 }))).toEqual({ method: "Deploy.Run", params: { a: "1" }, args: { n: 2 } });
    expect(rerunBody(job({}, {}))).toEqual({ method: "Deploy.Run", params: {} });
  });
});
