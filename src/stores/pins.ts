/**
 * Where tool pins are kept (see catalog/pinning.ts for what a pin is): the store interface, the one merge
 * rule every store applies, and the Redis store that lets replicas share pins.
 *
 * Merge rule, for a change written over the stored entry of the same tool: a first pin is written only where
 * no pin exists (the first writer wins, so two replicas pinning a new tool at once agree); any other change
 * wins unless the stored entry was pinned later (an approval made elsewhere), so an approval is never lost;
 * then only a pending change that is not what got pinned survives.
 *
 * Redis keeps one hash per key prefix, `<prefix>pins`: field `<pin key>\n<tool>`, value the JSON entry
 * (`{upstream, tool, hash, pinnedAt, pending?}`). A Lua script applies the merge rule atomically; a write that
 * changed something is announced on the channel `<prefix>pins:changed`, and the gateway re-reads the hash on
 * that message and each time Redis comes back (a message may have been missed while it was away).
 */
import type { Redis } from "ioredis";
import { z } from "zod";
import { ErrorCode, GatewayError } from "../errors.ts";
import type { RedisAccess } from "./redis.ts";
import { type StoreHealth, StoreUnavailable } from "./store.ts";

export const StoredPinSchema = z.object({
  hash: z.string(),
  pinnedAt: z.string(),
  pending: z.object({ hash: z.string(), seenAt: z.string() }).optional(),
});
export type StoredPin = z.output<typeof StoredPinSchema>;

/** upstream pin key → tool → pin. Maps, since tool names come from upstreams (think `__proto__`). */
export type PinMap = Map<string, Map<string, StoredPin>>;

export interface PinChange {
  upstream: string;
  tool: string;
  pin: StoredPin;
  /** A tool seen for the first time: written only where no pin exists yet. */
  first: boolean;
}

export interface PinStore {
  /** Where the pins live, for messages: a file path or a Redis hash. */
  readonly where: string;
  /** False while the backend cannot be reached (Redis lost); a file store is always available. */
  readonly available: boolean;
  /** Every pin. Throws StoreUnavailable while the backend cannot be reached, GatewayError when it is corrupt. */
  load(): Promise<PinMap>;
  /** Applies the changes (merge rule above), then returns every pin as stored. */
  save(changes: readonly PinChange[]): Promise<PinMap>;
  /** Calls `listener` when pins may have changed elsewhere (another replica, the CLI) or the store came back. */
  watch?(listener: () => void): void;
  close?(): Promise<void>;
}

/** The merge rule (the Lua script below is the same rule). */
export function mergePin(stored: StoredPin | undefined, change: Pick<PinChange, "pin" | "first">): StoredPin {
  const mine = change.pin;
  if (!stored) return mine;
  if (change.first) return stored;
  if (mine.pinnedAt >= stored.pinnedAt) return mine;
  const pending = mine.pending && mine.pending.hash !== stored.hash ? mine.pending : stored.pending;
  return { hash: stored.hash, pinnedAt: stored.pinnedAt, ...(pending ? { pending } : {}) };
}

export function getPin(pins: PinMap, upstream: string, tool: string): StoredPin | undefined {
  return pins.get(upstream)?.get(tool);
}

export function setPin(pins: PinMap, upstream: string, tool: string, pin: StoredPin): void {
  const tools = pins.get(upstream) ?? new Map<string, StoredPin>();
  pins.set(upstream, tools.set(tool, pin));
}

/** KEYS[1] the hash; ARGV[1] field, ARGV[2] the entry's JSON, ARGV[3] "1" for a first pin. Returns 1 if written. */
const PIN_MERGE = `
local cur = redis.call('hget', KEYS[1], ARGV[1])
if not cur then redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) return 1 end
if ARGV[3] == '1' or cur == ARGV[2] then return 0 end
local c = cjson.decode(cur)
local m = cjson.decode(ARGV[2])
if m.pinnedAt >= c.pinnedAt then redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) return 1 end
if m.pending and m.pending.hash ~= c.hash and not (c.pending and c.pending.hash == m.pending.hash) then
  c.pending = m.pending
  redis.call('hset', KEYS[1], ARGV[1], cjson.encode(c))
  return 1
end
return 0`;

/** The cluster's view of Redis (RedisStores): its health, when it comes back, and its shared subscriber. */
export interface PinStoreHealth {
  readonly health: StoreHealth;
  onAvailability(listener: (available: boolean) => void): void;
  subscribe(channel: string, listener: (message: string) => void, onReady?: () => void): void;
}

export class RedisPinStore implements PinStore {
  readonly where: string;
  readonly #access: RedisAccess;
  readonly #hash: string;
  readonly #channel: string;
  readonly #cluster: PinStoreHealth | undefined;
  /** A connection this store opened itself (the CLI's), closed with it. */
  readonly #own: Redis | undefined;

  /** On the gateway's connection (`cluster` tells when Redis comes back), or on its own (`own`, the CLI). */
  constructor(access: RedisAccess, options: { cluster?: PinStoreHealth; own?: Redis } = {}) {
    this.#access = access;
    this.#hash = access.key("pins");
    this.#channel = access.key("pins:changed");
    this.#cluster = options.cluster;
    this.#own = options.own;
    this.where = `Redis hash ${this.#hash}`;
  }

  /** A store on its own short-lived connection (`toolgate pins`): fails rather than waits when Redis is away. */
  static async connect(url: string, keyPrefix: string, commandTimeoutMs: number): Promise<RedisPinStore> {
    const { Redis } = await import("ioredis");
    const client = new Redis(url, {
      maxRetriesPerRequest: 1,
      commandTimeout: commandTimeoutMs,
      connectTimeout: Math.max(commandTimeoutMs, 1_000),
      retryStrategy: (times) => (times > 2 ? null : 200 * times),
    });
    client.on("error", () => {});
    const access: RedisAccess = {
      client,
      key: (k) => `${keyPrefix}${k}`,
      run: async (command) => {
        try {
          return await command();
        } catch (err) {
          throw new StoreUnavailable(`Redis at ${redactedUrl(url)}: ${(err as Error).message}`, {
            cause: err,
          });
        }
      },
    };
    return new RedisPinStore(access, { own: client });
  }

  get available(): boolean {
    return this.#cluster?.health.available ?? true;
  }

  async load(): Promise<PinMap> {
    const { client, run } = this.#access;
    const fields = await run(() => client.hgetall(this.#hash));
    const pins: PinMap = new Map();
    for (const [field, value] of Object.entries(fields)) {
      const entry = parseEntry(value);
      if (!entry) {
        throw new GatewayError(
          ErrorCode.ConfigInvalid,
          `the tool pin "${field.replace("\n", "/")}" in ${this.where} is invalid; delete it (HDEL) to pin that tool anew`,
        );
      }
      const { upstream, tool, ...pin } = entry;
      setPin(pins, upstream, tool, pin);
    }
    return pins;
  }

  async save(changes: readonly PinChange[]): Promise<PinMap> {
    const { client, run } = this.#access;
    let written = 0;
    for (const { upstream, tool, pin, first } of changes) {
      const value = JSON.stringify({ upstream, tool, ...pin });
      const field = `${upstream}\n${tool}`;
      written += Number(
        await run(() => client.eval(PIN_MERGE, 1, this.#hash, field, value, first ? "1" : "0")),
      );
    }
    if (written > 0) await run(() => client.publish(this.#channel, String(written)));
    return this.load();
  }

  /** The gateway's replicas re-read pins on a change message and whenever Redis comes back. */
  watch(listener: () => void): void {
    if (!this.#cluster) return; // the CLI reads once
    this.#cluster.onAvailability((available) => {
      if (available) listener();
    });
    this.#cluster.subscribe("pins:changed", listener, listener);
  }

  async close(): Promise<void> {
    try {
      await this.#own?.quit();
    } catch {
      this.#own?.disconnect();
    }
  }
}

const EntrySchema = StoredPinSchema.extend({ upstream: z.string(), tool: z.string() });

function parseEntry(value: string): z.output<typeof EntrySchema> | undefined {
  try {
    const parsed = EntrySchema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** A Redis URL without its password, for messages. */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(invalid URL)";
  }
}
