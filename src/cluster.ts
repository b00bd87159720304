/**
 * Cluster mode wiring (from the composition root): the Redis stores when `cluster.redis` is set, the
 * Cluster the policies share, the SSE event, task and tool pin stores, the session-id sealer and the shared
 * record of ended sessions, this replica's name and its /status/cluster report.
 * Without Redis none of this runs and the gateway is one process with everything in memory.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { ResolvedConfig } from "./config/load.ts";
import { Cluster } from "./policies/cluster.ts";
import { SessionSealer } from "./server/session-seal.ts";
import { MemoryEventStore } from "./stores/event-store.ts";
import { type PinStore, RedisPinStore } from "./stores/pins.ts";
import type { RedisStores } from "./stores/redis.ts";
import { RedisEventStore } from "./stores/redis-events.ts";
import { RedisSessionRevocations, type SessionRevocations } from "./stores/revocations.ts";
import type { ClusterStores } from "./stores/store.ts";
import { RedisTaskStore } from "./tasks/redis-store.ts";
import { MemoryTaskStore, type TaskStore } from "./tasks/store.ts";
import type { Logger } from "./telemetry/log.ts";
import type { Telemetry } from "./telemetry/telemetry.ts";

export function instanceIdOf(config: ResolvedConfig): string {
  return config.cluster.instanceId ?? `${hostname()}-${randomUUID().slice(0, 8)}`;
}

/** The Redis stores when cluster.redis is set; waits briefly so the first calls already run shared. */
export async function redisStores(
  config: ResolvedConfig,
  log: Logger,
  instanceId: string,
): Promise<ClusterStores | undefined> {
  const { cluster } = config;
  if (cluster.redis === undefined) return undefined;
  const { RedisStores } = await import("./stores/redis.ts");
  let lastError = "";
  const stores = new RedisStores({
    url: cluster.redis,
    keyPrefix: cluster.keyPrefix,
    replicas: cluster.replicas,
    commandTimeoutMs: cluster.commandTimeoutMs,
    pingMs: cluster.pingMs,
    instanceId,
    onError: (err) => {
      if (err.message === lastError) return;
      lastError = err.message;
      log.warn("redis connection error", { error: err.message });
    },
  });
  if (!(await stores.waitAvailable(Math.max(2_000, cluster.commandTimeoutMs)))) {
    log.warn("redis unreachable at start: running on local fallback limits until it answers", {
      replicas: cluster.replicas,
    });
  }
  return stores;
}

/** What /status/cluster shows: this replica, and the cluster as the store sees it (null while it is away). */
export async function clusterReport(
  cluster: Cluster,
  replicasConfigured: number,
): Promise<Record<string, unknown>> {
  const { stores, instanceId } = cluster.options;
  const local = {
    instance: instanceId,
    store: { kind: stores.kind, available: stores.health.available, latencyMs: stores.health.latencyMs },
    mode: cluster.shared ? "shared" : "local fallback",
    replicasConfigured,
    leasesHeldHere: cluster.leasesHeld(),
    events: cluster.counters,
  };
  try {
    return { ...local, cluster: await stores.snapshot() };
  } catch (err) {
    return { ...local, cluster: null, error: (err as Error).message };
  }
}

/** Session ids sealed with cluster.sessions.key, so any replica can serve any session; none without a key. */
export function sessionSealer(config: ResolvedConfig): SessionSealer | undefined {
  const { key, maxAgeMs } = config.cluster.sessions;
  return key === undefined ? undefined : new SessionSealer({ secret: key, maxAgeMs });
}

export function clusterFor(
  config: ResolvedConfig,
  stores: ClusterStores,
  log: Logger,
  instanceId: string,
): Cluster {
  const { cluster } = config;
  stores.onAvailability((available) => {
    if (available) log.info("cluster store reachable: shared locks, caps and rate limits", { instanceId });
    else {
      log.warn(
        "cluster store unreachable: locks refuse (LockUnavailable), caps and rate limits use local limits",
        {
          instanceId,
          replicas: cluster.replicas,
          locks: cluster.whenRedisLost.locks,
        },
      );
    }
  });
  log.info("cluster mode", {
    instanceId,
    store: stores.kind,
    replicas: cluster.replicas,
    leaseTtlMs: cluster.leaseTtlMs,
  });
  return new Cluster({
    stores,
    instanceId,
    leaseTtlMs: cluster.leaseTtlMs,
    replicas: cluster.replicas,
    pollMs: cluster.pollMs,
    locksWhenUnavailable: cluster.whenRedisLost.locks,
  });
}

/** The cluster gauges on /metrics: Redis up and latency, leases held, fallback counts. */
export function observeCluster(telemetry: Telemetry, cluster: Cluster): void {
  telemetry.observeCluster(() => ({
    instance: cluster.options.instanceId,
    storeUp: cluster.shared,
    latencyMs: cluster.options.stores.health.latencyMs,
    leasesHeld: cluster.leasesHeld().length,
    events: { ...cluster.counters },
  }));
}

/** SSE events for Last-Event-ID resumption: on Redis when the cluster has it (any replica resumes), else memory. */
export function eventStoreFor(stores: ClusterStores | undefined): MemoryEventStore | RedisEventStore {
  return stores?.kind === "redis"
    ? new RedisEventStore((stores as RedisStores).access)
    : new MemoryEventStore();
}

/** Task records: on Redis when the cluster has it (tasks/get on any replica), else this process's memory. */
export function taskStoreFor(stores: ClusterStores | undefined, maxTasks: () => number): TaskStore {
  return stores?.kind === "redis"
    ? new RedisTaskStore((stores as RedisStores).access, { maxTasks })
    : new MemoryTaskStore({ maxTasks });
}

/** Tool pins: one Redis hash every replica shares when the cluster has Redis, else undefined (the pins file). */
export function pinStoreFor(stores: ClusterStores | undefined): PinStore | undefined {
  return stores?.kind === "redis"
    ? new RedisPinStore((stores as RedisStores).access, { cluster: stores as RedisStores })
    : undefined;
}

/** Sealed sessions ended on any replica: on Redis when the cluster has it and ids are sealed, else none. */
export function revocationsFor(
  stores: ClusterStores | undefined,
  sealer: SessionSealer | undefined,
): SessionRevocations | undefined {
  return stores?.kind === "redis" && sealer ? new RedisSessionRevocations(stores as RedisStores) : undefined;
}
