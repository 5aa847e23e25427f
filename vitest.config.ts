import { defineConfig } from "vitest/config";

// One root run covers every package; each package keeps its own vitest.config.ts so
// `pnpm --filter <pkg> test` works too.
export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*"],
  },
});
