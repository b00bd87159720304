import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
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
    // Tests start hundreds of node processes (the gateway, the CLI, fixtures, the conformance suite): Node's
    // on-disk compile cache, inherited through the environment, halves the CPU each one spends loading its
    // modules. It checks each file's content, so an edited source is compiled afresh.
    env: {
      NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? join(tmpdir(), "toolgate-test-compile-cache"),
    },
    // Test files run side by side, at least two at a time. vitest's default (cores - 1) is one worker on a
    // two-core CI machine, where our files mostly wait on child processes and sockets: measured on 8 e2e and
    // 8 integration files, two workers took 61% and 60% of the wall time of one, for the same CPU.
    maxWorkers: Math.max(2, availableParallelism() - 1),
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
      {
        extends: true,
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          // Tests marked concurrent (each with its own processes, ports and files) run three at a time: on two
          // cores that keeps both busy while one process starts and another waits.
          maxConcurrency: 3,
        },
      },
    ],
  },
});
