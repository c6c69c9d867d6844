import { describe, expect, it } from "vitest";
import { firesOn, listTriggers } from "./triggers";

describe("triggers", () => {
  it("lists what /api/v1/triggers answers, an empty answer as none", async () => {
    const answers = [{ triggers: [{ trigger: "hook:gh", name: "gh", kind: "github", method: "a.B.C", path: "/hooks/gh" }] }, {}];
    const fetcher = (async () => new Response(JSON.stringify(answers.shift()))) as typeof fetch;
    expect((await listTriggers(fetcher)).map((t) => t.trigger)).toEqual(["hook:gh"]);
    expect(await listTriggers(fetcher)).toEqual([]);
  });

  it("says what a hook or a schedule fires on", () => {
    expect(firesOn({ trigger: "hook:gh", name: "gh", kind: "github", method: "m", path: "/hooks/gh" })).toBe("POST /hooks/gh");
    expect(firesOn({ trigger: "schedule:n", name: "n", kind: "schedule", method: "m", when: "every 15m" })).toBe("every 15m");
  });
});
