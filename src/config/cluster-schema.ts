/**
 * The `cluster` section: several replicas behind a load balancer sharing locks, caps and rate limits on
 * Redis. Without `redis` (and without TOOLGATE_REDIS_URL) the gateway is one process with everything in
 * memory, exactly as before.
 */
import { z } from "zod";
import { msAtLeast } from "./duration.ts";

const positiveInt = z.number().int().positive();

export const ClusterSchema = z.strictObject({
  /** Redis URL (`redis://[:password@]host:6379/0`, `rediss://` for TLS); the env TOOLGATE_REDIS_URL when absent. */
  redis: z.url({ protocol: /^rediss?$/ }).optional(),
  /** Prefix of every key the gateway writes, so several gateways can share one Redis. */
  keyPrefix: z.string().default("toolgate:"),
  /** Replicas the cluster runs: while Redis is away, caps and rate limits fall back to their value / replicas. */
  replicas: positiveInt.default(1),
  /** A lock's lease: renewed every third of it while the call runs; a dead replica's lease expires after it. */
  leaseTtlMs: msAtLeast(100).default(10_000),
  /** How often a call waiting for a lease held elsewhere or a full cluster cap tries again. */
  pollMs: msAtLeast().default(50),
  /** A Redis command that takes longer fails (the store counts as unreachable for that call). */
  commandTimeoutMs: msAtLeast().default(1_000),
  /** Health ping period: Redis latency, loss and recovery are noticed within it. */
  pingMs: msAtLeast().default(1_000),
  /** This replica's name in leases, logs and metrics (`service.instance.id`); default `<hostname>-<pid>`. */
  instanceId: z.string().min(1).optional(),
  /**
   * 2025-11-25 sessions on any replica: session ids carry the session's state, AES-256-GCM-sealed with a key
   * derived from `key` (the same on every replica; the env TOOLGATE_SESSION_KEY when absent). Without a key,
   * a session lives on the replica that created it (pin it at the load balancer).
   */
  sessions: z
    .strictObject({
      key: z
        .string()
        .min(32, "a session key needs at least 32 characters (use 32 random bytes, base64)")
        .optional(),
      /** A sealed session id older than this is refused on a replica that does not hold it. */
      maxAgeMs: msAtLeast().default(24 * 60 * 60_000),
    })
    .prefault({}),
  /** While Redis is unreachable. */
  whenRedisLost: z
    .strictObject({
      /** `refuse`: an exclusive tool fails with LockUnavailable (never runs twice); `local`: per-replica locks only. */
      locks: z.enum(["refuse", "local"]).default("refuse"),
    })
    .prefault({}),
});

export type ClusterConfig = z.output<typeof ClusterSchema>;
