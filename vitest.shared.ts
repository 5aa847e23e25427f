import { defineProject, type UserWorkspaceConfig } from "vitest/config";

/**
 * Per-package vitest project. Workspace packages resolve each other through the
 * `@smashlab/source` export condition, so tests run on sources without a build.
 * Vitest resolves node-environment imports through the SSR resolver, hence both keys.
 */
export function smashlabProject(name: string, extra: UserWorkspaceConfig["test"] = {}) {
  return defineProject({
    resolve: { conditions: ["@smashlab/source"] },
    ssr: { resolve: { conditions: ["@smashlab/source"] } },
    test: {
      name,
      include: ["src/**/*.test.ts", "test/**/*.test.ts"],
      testTimeout: 60_000,
      ...extra,
    },
  });
}
