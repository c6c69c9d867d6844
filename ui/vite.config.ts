// Vite builds the UI into dist/, which the master serves at /. `npm run dev`
// serves it with hot reload and sends API calls to a master on ARKO_HTTP
// (default http://127.0.0.1:8080).
import { defineConfig } from "vitest/config";
import vue from "@vitejs/plugin-vue";

const master = process.env.ARKO_HTTP ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [vue()],
  build: { outDir: "dist", emptyOutDir: true },
  server: { proxy: { "/api": master, "/openapi.json": master } },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
