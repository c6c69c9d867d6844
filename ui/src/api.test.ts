import { describe, expect, it } from "vitest";
import { ApiError, call } from "./api";

describe("call", () => {
  it("says the master is unreachable when the request cannot be sent", async () => {
    const fetcher = async () => {
      throw new TypeError("Failed to fetch");
    };
    const error = (await call("/api/v1/slaves", {}, fetcher as typeof fetch).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.failure).toBe("unreachable");
    expect(error.message).toContain("cannot be reached");
  });

  it("asks for the client token on 401 and shows the API's message otherwise", async () => {
    const answer = (status: number) => async () =>
      new Response(JSON.stringify({ error: { code: "X", message: `refused ${status}` } }), {
        status,
      });
    const refused = (await call("/x", {}, answer(401) as typeof fetch).catch((e: unknown) => e)) as ApiError;
    expect(refused.failure).toBe("unauthenticated");
    expect(refused.message).toContain("client token");
    const bad = (await call("/x", {}, answer(400) as typeof fetch).catch((e: unknown) => e)) as ApiError;
    expect(bad.failure).toBe("refused");
    expect(bad.message).toBe("The master refused the call: refused 400");
  });
});
