import { defineConfig } from "vitest/config";

/**
 * Three tiers (`npm run test:unit|test:integration|test:e2e`; `npm test` runs them all and times each):
 * unit tests run in process with fake clocks, integration tests start real servers on 127.0.0.1, e2e tests
 * spawn the gateway binary and drive it with real clients.
 *
 * The bounds below only stop a test that hangs; they are generous because CI machines are shared and a
 * loaded one can take many seconds to start a process. No test's verdict may depend on them.
 */
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    expect: { poll: { timeout: 30_000 } },
    pool: "forks",
    reporters: ["default"],
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      {
        extends: true,
        test: { name: "integration", include: ["test/integration/**/*.test.ts", "test/fuzz/**/*.test.ts"] },
      },
      { extends: true, test: { name: "e2e", include: ["test/e2e/**/*.test.ts"] } },
    ],
  },
});
