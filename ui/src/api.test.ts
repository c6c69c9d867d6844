import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, call, forgetStoredToken, getToken, headers, setToken } from "./api";

/** A Storage over a Map: the node test environment has neither web storage. */
function fakeStorage(): Storage {
  const items = new Map<string, string>();
  return {
    get length() {
      return items.size;
    },
    clear: () => items.clear(),
    getItem: (key) => items.get(key) ?? null,
    key: (index) => [...items.keys()][index] ?? null,
    removeItem: (key) => void items.delete(key),
    setItem: (key, value) => void items.set(key, value),
  };
}

describe("client token", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("is kept for this tab only, never in localStorage", () => {
    const session = fakeStorage();
    const local = fakeStorage();
    vi.stubGlobal("sessionStorage", session);
    vi.stubGlobal("localStorage", local);
    setToken("tok-123");
    expect(getToken()).toBe("tok-123");
    expect(headers()).toEqual({ Authorization: "Bearer tok-123" });
    expect(session.length).toBe(1);
    expect(local.length).toBe(0);
    setToken("");
    expect(session.length).toBe(0);
    expect(headers()).toEqual({});
  });

  it("drops a token an earlier version left in localStorage", () => {
    const local = fakeStorage();
    local.setItem("arko.token", "old-token");
    vi.stubGlobal("sessionStorage", fakeStorage());
    vi.stubGlobal("localStorage", local);
    forgetStoredToken();
    expect(local.length).toBe(0);
    expect(getToken()).toBe("");
  });
});

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
