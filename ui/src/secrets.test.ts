import { describe, expect, it } from "vitest";
import { createSSRApp, h } from "vue";
import { createMemoryHistory, createRouter } from "vue-router";
import { renderToString } from "vue/server-renderer";
import { ApiError, type Fetch } from "./api";
import JobTree from "./components/JobTree.vue";
import SecretsTable from "./components/SecretsTable.vue";
import { buildTree } from "./lineage";
import { listSecrets } from "./secrets";

const answer =
  (status: number, body: unknown): Fetch =>
  async () =>
    new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** A component rendered to HTML, with a router for its links (no browser needed). */
async function html(component: object, props: Record<string, unknown>): Promise<string> {
  const app = createSSRApp({ render: () => h(component, props) });
  app.use(createRouter({ history: createMemoryHistory(), routes: [{ path: "/:rest(.*)*", component: { render: () => null } }] }));
  return renderToString(app);
}

describe("secrets page", () => {
  it("reads names, globs and times from GET /api/v1/secrets and shows them", async () => {
    const fetcher = answer(200, {
      secrets: [
        { name: "ZED", methods: [], createdAt: "2026-12-01T10:00:00Z", updatedAt: "2026-12-01T10:00:00Z" },
        { name: "DEPLOY_KEY", methods: ["Deploy.*", "Release.Run"], createdAt: "2026-12-04T17:20:01Z", updatedAt: "2026-12-04T18:00:00.5Z" },
      ],
    });
    const secrets = await listSecrets(fetcher);
    expect(secrets.map((s) => s.name)).toEqual(["DEPLOY_KEY", "ZED"]);
    const page = await html(SecretsTable, { secrets });
    expect(page).toContain("DEPLOY_KEY");
    expect(page).toContain("Deploy.*");
    expect(page).toContain("Release.Run");
    expect(page).toContain("2026-12-04 17:20:01 UTC");
    expect(page).toContain("2026-12-04 18:00:00 UTC");
    expect(page).toContain("no method may receive it");
  });

  it("reads the snake_case spelling of the times too", async () => {
    const secrets = await listSecrets(answer(200, { secrets: [{ name: "A", methods: ["*"], created_at: "2026-01-02T03:04:05Z" }] }));
    expect(secrets[0]?.created_at).toBe("2026-01-02T03:04:05Z");
    expect(await listSecrets(answer(200, {}))).toEqual([]);
  });

  it("shows the master's message when it keeps no secrets (412)", async () => {
    const fetcher = answer(412, {
      error: { code: "FAILED_PRECONDITION", message: "no secrets key: start the master with --secrets_key_file" },
    });
    const error = (await listSecrets(fetcher).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(412);
    expect(error.message).toContain("start the master with --secrets_key_file");
  });
});

describe("job tree", () => {
  it("shows each child's state, method, slave and link, nested", async () => {
    const base = { params: {}, code: "", error: "", result: "", cancelled_by: "", created_at: "2026-01-01T00:00:00Z" };
    const tree = buildTree("p".repeat(32), [
      { ...base, id: "a".repeat(32), parent_id: "p".repeat(32), method: "Ci.Lint", state: "SUCCEEDED", slave: "127.0.0.1:7001" },
      { ...base, id: "b".repeat(32), parent_id: "a".repeat(32), method: "Ci.Unit", state: "RUNNING", slave: "" },
    ]);
    const page = await html(JobTree, { nodes: tree });
    expect(page).toContain(`href="/jobs/${"a".repeat(32)}"`);
    expect(page).toContain(`href="/jobs/${"b".repeat(32)}"`);
    expect(page).toContain("Ci.Lint");
    expect(page).toContain("127.0.0.1:7001");
    expect(page).toContain(">running<");
    // The grandchild's list is inside the child's item.
    expect(page.indexOf("Ci.Unit")).toBeGreaterThan(page.indexOf("Ci.Lint"));
    expect((page.match(/<ul class="tree"/g) ?? []).length).toBe(2);
  });
});
