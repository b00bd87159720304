/**
 * The cluster stores on Redis (ioredis). Leases and permits use three small Lua scripts because each
 * check-and-set must be atomic; rate limits use rate-limiter-flexible, whose in-memory "insurance" limiter
 * (perMinute / replicas) answers while Redis is unreachable.
 *
 * Commands never queue while Redis is away (`enableOfflineQueue: false`) and time out after
 * `commandTimeoutMs`, so a lost Redis is a quick StoreUnavailable, never a call that hangs; the client
 * reconnects on its own and a health ping flips `available` back, with no restart.
 *
 * Keys (all under `keyPrefix`): `lease:<id>` (value `<token>:<holder>`, PX ttl), `fence` (the fencing
 * token counter), `cap:<name>` (sorted set of permit id → expiry ms), `rate:<perMinute>:<key>` (by the
 * library), `replica:<id>` (last ping, PX three pings); `events:*` (stores/redis-events.ts), `task:*`, `tasks:*`
 * (tasks/redis-store.ts), `pins` with the channel `pins:changed` (stores/pins.ts), `revoked:<sha256>` with the
 * channel `sessions:revoked` (stores/revocations.ts). Channels share one subscriber connection per replica
 * (`subscribe`). A single Redis (or a primary with replicas behind Sentinel) is assumed: the scripts touch
 * several keys, which Redis Cluster would need hash tags for.
 */
import { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import {
  type CapSlot,
  type ClusterSnapshot,
  type ClusterStores,
  type LeaseStore,
  type PermitStore,
  type RateStore,
  type StoreHealth,
  StoreUnavailable,
} from "./store.ts";

export interface RedisStoresOptions {
  url: string;
  keyPrefix: string;
  /** Replicas the cluster runs; the local rate fallback allows perMinute / replicas. */
  replicas: number;
  commandTimeoutMs: number;
  /** Health ping period (ms); also how fast a recovered Redis is noticed. */
  pingMs: number;
  /** This replica, announced with each ping (`replica:<id>`, expiring after three missed pings). */
  instanceId: string;
  /** Told about connection errors (the client retries by itself). */
  onError?: (err: Error) => void;
}

const LEASE_ACQUIRE = `
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], token .. ':' .. ARGV[2], 'PX', ARGV[1])
return token`;

/** KEYS[1] lease; ARGV[1] token, ARGV[2] ttl ms (renew) or absent (release). */
const LEASE_RENEW_OR_RELEASE = `
local v = redis.call('get', KEYS[1])
if not v or string.sub(v, 1, #ARGV[1] + 1) ~= ARGV[1] .. ':' then return 0 end
if ARGV[2] then redis.call('pexpire', KEYS[1], ARGV[2]) else redis.call('del', KEYS[1]) end
return 1`;

/** KEYS: one sorted set per cap; ARGV[1] permit, ARGV[2] ttl ms, ARGV[3..] limits. Redis' own clock. */
const PERMIT_ACQUIRE = `
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  redis.call('zremrangebyscore', key, '-inf', now)
  if redis.call('zcard', key) >= tonumber(ARGV[i + 2]) then return i - 1 end
end
for _, key in ipairs(KEYS) do
  redis.call('zadd', key, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('pexpire', key, ARGV[2])
end
return -1`;

const PERMIT_RENEW = `
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = 1
for _, key in ipairs(KEYS) do
  local score = redis.call('zscore', key, ARGV[1])
  if not score or tonumber(score) <= now then all = 0 end
  redis.call('zadd', key, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('pexpire', key, ARGV[2])
end
return all`;

type Script = (...args: Array<string | number>) => Promise<unknown>;

/** The connection as other shared stores (SSE events, tasks) use it. */
export interface RedisAccess {
  readonly client: Redis;
  /** `k` under the configured key prefix. */
  key(k: string): string;
  /** Runs a command; throws StoreUnavailable at once while Redis is away, or when the command fails. */
  run<T>(command: () => Promise<T>): Promise<T>;
}

export class RedisStores implements ClusterStores {
  readonly kind = "redis";
  readonly leases: LeaseStore;
  readonly permits: PermitStore;
  readonly rates: RateStore;
  readonly #client: Redis;
  readonly #options: RedisStoresOptions;
  readonly #listeners = new Set<(available: boolean) => void>();
  readonly #timer: ReturnType<typeof setInterval>;
  /** Pub/sub: listeners per channel, and who re-reads after the subscriber connection (re)connects. */
  readonly #channels = new Map<string, Set<(message: string) => void>>();
  readonly #resubscribed = new Set<() => void>();
  #subscriber: Redis | undefined;
  #available = false;
  #latencyMs: number | undefined;
  #closed = false;

  constructor(options: RedisStoresOptions) {
    this.#options = options;
    const client = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: Math.max(options.commandTimeoutMs, 1_000),
      enableAutoPipelining: true,
      // Reconnect forever, at most every 2 s: Redis coming back is noticed without a restart.
      retryStrategy: (times) => Math.min(100 * times, 2_000),
    });
    client.on("error", (err: Error) => options.onError?.(err));
    client.on("ready", () => void this.#ping());
    client.on("close", () => this.#setAvailable(false));
    for (const [name, lua] of Object.entries({
      tgLeaseAcquire: LEASE_ACQUIRE,
      tgLeaseRenewOrRelease: LEASE_RENEW_OR_RELEASE,
      tgPermitAcquire: PERMIT_ACQUIRE,
      tgPermitRenew: PERMIT_RENEW,
    })) {
      client.defineCommand(name, { lua });
    }
    this.#client = client;
    this.#timer = setInterval(() => void this.#ping(), options.pingMs);
    this.#timer.unref();
    const key = (k: string) => `${options.keyPrefix}${k}`;
    const script = (name: string): Script => {
      const fn = (client as unknown as Record<string, Script>)[name] as Script;
      return (...args) => this.#run(() => fn.apply(client, args));
    };
    const leaseAcquire = script("tgLeaseAcquire");
    const leaseRenewOrRelease = script("tgLeaseRenewOrRelease");
    const permitAcquire = script("tgPermitAcquire");
    const permitRenew = script("tgPermitRenew");
    const capKeys = (caps: readonly CapSlot[]) => caps.map((c) => key(`cap:${c.name}`));

    this.leases = {
      async tryAcquire(id, holder, ttlMs) {
        const token = Number(await leaseAcquire(2, key(`lease:${id}`), key("fence"), ttlMs, holder));
        return token > 0 ? token : undefined;
      },
      async renew(id, token, ttlMs) {
        return Number(await leaseRenewOrRelease(1, key(`lease:${id}`), token, ttlMs)) === 1;
      },
      async release(id, token) {
        await leaseRenewOrRelease(1, key(`lease:${id}`), token);
      },
    };
    this.permits = {
      async tryAcquire(caps, permit, ttlMs) {
        const keys = capKeys(caps);
        return Number(await permitAcquire(keys.length, ...keys, permit, ttlMs, ...caps.map((c) => c.limit)));
      },
      async renew(caps, permit, ttlMs) {
        const keys = capKeys(caps);
        return Number(await permitRenew(keys.length, ...keys, permit, ttlMs)) === 1;
      },
      release: async (caps, permit) => {
        await this.#run(() => Promise.all(capKeys(caps).map((k) => client.zrem(k, permit))));
      },
    };
    this.rates = this.#rateStore(key("rate:"));
  }

  /** The connection and its failure rules, for the event and task stores (stores/redis-events.ts, tasks/redis-store.ts). */
  get access(): RedisAccess {
    return {
      client: this.#client,
      key: (k) => `${this.#options.keyPrefix}${k}`,
      run: (command) => this.#run(command),
    };
  }

  get health(): StoreHealth {
    return { available: this.#available, latencyMs: this.#available ? this.#latencyMs : undefined };
  }

  onAvailability(listener: (available: boolean) => void): void {
    this.#listeners.add(listener);
  }

  /**
   * Calls `listener` with each message on `channel` (under the key prefix), over the one subscriber connection
   * this replica opens for every channel (a subscribed connection runs no other command). That connection
   * waits for Redis rather than failing and resubscribes by itself; `onReady` runs each time it is connected
   * again, since messages sent while it was away are lost: the listener re-reads what it follows.
   */
  subscribe(channel: string, listener: (message: string) => void, onReady?: () => void): void {
    const name = `${this.#options.keyPrefix}${channel}`;
    if (onReady) this.#resubscribed.add(onReady);
    const listeners = this.#channels.get(name);
    if (listeners) return void listeners.add(listener);
    this.#channels.set(name, new Set([listener]));
    this.#subscriberConnection()
      .subscribe(name)
      .catch(() => {});
  }

  #subscriberConnection(): Redis {
    if (this.#subscriber) return this.#subscriber;
    // Its commands wait for Redis (no timeout): a SUBSCRIBE sent late still subscribes.
    const subscriber = this.#client.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      commandTimeout: undefined,
    });
    subscriber.on("error", () => {});
    subscriber.on("message", (channel: string, message: string) => {
      for (const listener of this.#channels.get(channel) ?? []) listener(message);
    });
    subscriber.on("ready", () => {
      for (const onReady of this.#resubscribed) onReady();
    });
    this.#subscriber = subscriber;
    return subscriber;
  }

  /** Resolves once Redis answered a ping, or false after `timeoutMs`. */
  async waitAvailable(timeoutMs: number): Promise<boolean> {
    if (this.#available) return true;
    return new Promise((resolve) => {
      const done = (up: boolean) => {
        if (!up) return;
        clearTimeout(timer);
        this.#listeners.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(done);
        resolve(false);
      }, timeoutMs);
      this.#listeners.add(done);
    });
  }

  async snapshot(): Promise<ClusterSnapshot> {
    const { keyPrefix } = this.#options;
    const client = this.#client;
    const scan = (pattern: string) =>
      this.#run(async () => (await client.scan("0", "MATCH", `${keyPrefix}${pattern}`, "COUNT", 1000))[1]);
    const [replicaKeys, leaseKeys] = [await scan("replica:*"), (await scan("lease:*")).slice(0, 200)];
    const [seen, values, ttls] = await this.#run(() =>
      Promise.all([
        replicaKeys.length ? client.mget(...replicaKeys) : [],
        leaseKeys.length ? client.mget(...leaseKeys) : [],
        Promise.all(leaseKeys.map((k) => client.pttl(k))),
      ]),
    );
    const replicas = replicaKeys.map((k, i) => ({
      id: k.slice(`${keyPrefix}replica:`.length),
      seenAt: new Date(Number(seen[i] ?? 0)).toISOString(),
    }));
    const leases = leaseKeys.flatMap((k, i) => {
      const value = values[i];
      if (!value) return [];
      const colon = value.indexOf(":");
      return [
        {
          lock: k.slice(`${keyPrefix}lease:`.length),
          token: Number(value.slice(0, colon)),
          holder: value.slice(colon + 1),
          expiresInMs: ttls[i] ?? 0,
        },
      ];
    });
    return { replicas: replicas.sort((a, b) => a.id.localeCompare(b.id)), leases };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    // The subscriber has nothing to flush (and may be waiting for Redis): cut it.
    this.#subscriber?.disconnect();
    try {
      await this.#client.quit();
    } catch {
      this.#client.disconnect();
    }
  }

  /** One call of `perMinute` per key and fixed minute window, cluster-wide; locally divided while Redis is away. */
  #rateStore(prefix: string): RateStore {
    const limiters = new Map<number, RateLimiterRedis>();
    const limiterFor = (perMinute: number) => {
      let limiter = limiters.get(perMinute);
      if (!limiter) {
        limiter = new RateLimiterRedis({
          storeClient: this.#client,
          keyPrefix: `${prefix}${perMinute}`,
          points: perMinute,
          duration: 60,
          rejectIfRedisNotReady: true,
          insuranceLimiter: new RateLimiterMemory({
            points: Math.max(1, Math.floor(perMinute / this.#options.replicas)),
            duration: 60,
          }),
        });
        limiters.set(perMinute, limiter);
      }
      return limiter;
    };
    return {
      async consume(key, perMinute) {
        try {
          await limiterFor(perMinute).consume(key);
          return { allowed: true };
        } catch (err) {
          if (err instanceof RateLimiterRes) return { allowed: false, retryAfterMs: err.msBeforeNext };
          throw new StoreUnavailable(`rate limit store failed: ${(err as Error).message}`, { cause: err });
        }
      },
    };
  }

  async #run<T>(command: () => Promise<T>): Promise<T> {
    // Until the health ping answers again, fail at once rather than make every call wait for a timeout.
    if (!this.#available) throw new StoreUnavailable(`Redis is unreachable (${this.#client.status})`);
    try {
      return await command();
    } catch (err) {
      throw new StoreUnavailable(`Redis command failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async #ping(): Promise<void> {
    if (this.#closed) return;
    const started = performance.now();
    try {
      await this.#client.ping();
      this.#latencyMs = performance.now() - started;
      this.#setAvailable(true);
      const { keyPrefix, instanceId, pingMs } = this.#options;
      await this.#client.set(`${keyPrefix}replica:${instanceId}`, Date.now(), "PX", pingMs * 3);
    } catch {
      this.#setAvailable(false);
    }
  }

  #setAvailable(available: boolean): void {
    if (available === this.#available || this.#closed) return;
    this.#available = available;
    for (const listener of this.#listeners) listener(available);
  }
}
