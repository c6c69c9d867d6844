import { describe, expect, it } from "vitest";
import { duration, errorText, isFinal, outputLine, stamp, triggerText } from "./format";

describe("duration", () => {
  it("reads like a person would say it", () => {
    const start = "2026-01-01T00:00:00Z";
    const at = (ms: number) => new Date(Date.parse(start) + ms).toISOString();
    expect(duration({ started_at: start, ended_at: at(850) })).toBe("850 ms");
    expect(duration({ started_at: start, ended_at: at(4200) })).toBe("4.2 s");
    expect(duration({ started_at: start, ended_at: at(185_000) })).toBe("3 min 5 s");
    expect(duration({ started_at: start }, Date.parse(start) + 2000)).toBe("2.0 s");
  });
});

describe("outputLine", () => {
  it("shows a log line's text and any other message as JSON", () => {
    expect(outputLine('{"number":1,"text":"line 1 of 3"}')).toBe("line 1 of 3");
    expect(outputLine('{"message":"done"}')).toBe('{"message":"done"}');
    expect(isFinal("RUNNING")).toBe(false);
    expect(isFinal("CANCELLED")).toBe(true);
  });
});

describe("stamp, triggerText, errorText", () => {
  it("shows times in UTC to the second, and a dash when unset", () => {
    expect(stamp("2026-12-04T17:20:01.123456Z")).toBe("2026-12-04 17:20:01 UTC");
    expect(stamp(undefined)).toBe("—");
  });

  it("says what started a job in words", () => {
    expect(triggerText("api")).toBe("API call");
    expect(triggerText("")).toBe("API call");
    expect(triggerText("job")).toBe("child job");
    expect(triggerText("hook:arko-main")).toBe("webhook arko-main");
    expect(triggerText("schedule:nightly")).toBe("schedule nightly");
  });

  it("cuts a long error for a table cell, code first", () => {
    expect(errorText({ code: "", error: "" })).toBe("");
    expect(errorText({ code: "UNAVAILABLE", error: "slave gone" })).toBe("UNAVAILABLE: slave gone");
    expect(errorText({ code: "X", error: "e".repeat(300) }, 20)).toHaveLength(20);
  });
});
