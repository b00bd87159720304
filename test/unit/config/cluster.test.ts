import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/load.ts";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";

const BASE = { mcpServers: {} };

function issuesOf(raw: unknown, env: Record<string, string> = {}): string[] {
  try {
    resolveConfig(raw, env);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe(ErrorCode.ConfigInvalid);
    const issues = (err as GatewayError).data?.issues as Array<{ path: string; message: string }>;
    return issues.map((i) => `${i.path}: ${i.message}`);
  }
}

describe("cluster config", () => {
  it("is one process with everything in memory unless Redis is configured", () => {
    const { config } = resolveConfig(BASE, {});
    expect(config.cluster.redis).toBeUndefined();
    expect(config.cluster).toMatchObject({
      replicas: 1,
      leaseTtlMs: 10_000,
      whenRedisLost: { locks: "refuse" },
    });
  });

  it("takes Redis and the session key from TOOLGATE_REDIS_URL and TOOLGATE_SESSION_KEY, kept secret", () => {
    const env = { TOOLGATE_REDIS_URL: "redis://:pw@redis:6379/0", TOOLGATE_SESSION_KEY: "x".repeat(40) };
    const { config, secretValues } = resolveConfig(BASE, env);
    expect(config.cluster.redis).toBe(env.TOOLGATE_REDIS_URL);
    expect(config.cluster.sessions.key).toBe(env.TOOLGATE_SESSION_KEY);
    expect(secretValues.has(env.TOOLGATE_REDIS_URL)).toBe(true);
    expect(secretValues.has(env.TOOLGATE_SESSION_KEY)).toBe(true);
  });

  it("keeps a session key and a Redis password written in the file out of `toolgate check` too", () => {
    const cluster = {
      redis: "rediss://user:secret@redis.example.com:6380",
      sessions: { key: "k".repeat(32) },
    };
    const { secretValues } = resolveConfig({ ...BASE, cluster }, {});
    expect(secretValues.has(cluster.redis)).toBe(true);
    expect(secretValues.has(cluster.sessions.key)).toBe(true);
  });

  it("refuses a non-Redis URL, a short session key and unknown keys, naming their paths", () => {
    expect(issuesOf({ ...BASE, cluster: { redis: "http://redis:6379" } })[0]).toMatch(/^\$\.cluster\.redis/);
    expect(issuesOf(BASE, { TOOLGATE_REDIS_URL: "redis-host:6379" })[0]).toMatch(/^\$\.cluster\.redis/);
    expect(issuesOf({ ...BASE, cluster: { sessions: { key: "short" } } })[0]).toMatch(
      /^\$\.cluster\.sessions\.key: .*32 characters/,
    );
    expect(issuesOf(BASE, { TOOLGATE_SESSION_KEY: "short" })[0]).toMatch(/TOOLGATE_SESSION_KEY/);
    expect(issuesOf({ ...BASE, cluster: { replica: 3 } })[0]).toMatch(/^\$\.cluster/);
  });
});
