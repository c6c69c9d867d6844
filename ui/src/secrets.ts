// The secrets page's data: names, method globs and times, never values (the
// master has none to give). GET /api/v1/secrets answers the protobuf JSON
// mapping of arko.v1.ListSecretsResponse; a master started without
// --secrets_key_file answers 412 with a message saying how to set one, which
// the page shows as it is.
import { call, type Fetch } from "./api";

export interface Secret {
  name: string;
  /** Globs of the methods allowed to receive it (`Deploy.*`). */
  methods: string[];
  created_at: string;
  updated_at: string;
}

type Listed = Partial<Record<"name" | "createdAt" | "created_at" | "updatedAt" | "updated_at", string>> & {
  methods?: string[];
};

/**
 * The fleet's secrets, sorted by name.
 *
 * Times are read under either spelling of the JSON mapping (`createdAt`, or
 * `created_at` as the jobs API prints field names), so the page does not hang
 * on one printer option.
 */
export async function listSecrets(fetcher: Fetch = fetch): Promise<Secret[]> {
  const body = await call<{ secrets?: Listed[] }>("/api/v1/secrets", {}, fetcher);
  return (body.secrets ?? [])
    .map((s) => ({
      name: s.name ?? "",
      methods: s.methods ?? [],
      created_at: s.createdAt ?? s.created_at ?? "",
      updated_at: s.updatedAt ?? s.updated_at ?? "",
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}
