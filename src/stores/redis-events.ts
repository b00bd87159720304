/**
 * SSE events of 2025-era streams on Redis, so a client whose stream was cut can resume it with
 * `Last-Event-ID` on any replica. One list per stream (`events:<streamId>`, entries `<id>\n<data>`), trimmed
 * to the same events per stream as the memory store and expiring `ttlMs` after its last event: Redis memory
 * stays bounded by the streams of the last few minutes, with no sweeper.
 *
 * Every event is also kept in this replica's memory store (same bounds as without Redis): while Redis is
 * away, or after it restarted empty, a client coming back to the replica that held its stream still resumes.
 * Appends never wait: the transport writes the event to the client at once and the list follows.
 */
import {
  EVENT_STORE_DEFAULTS,
  type EventStore,
  eventsAfter,
  MemoryEventStore,
  type MemoryEventStoreOptions,
  type StoredEvent,
} from "./event-store.ts";
import type { RedisAccess } from "./redis.ts";
import { StoreUnavailable } from "./store.ts";

export interface RedisEventStoreOptions extends MemoryEventStoreOptions {
  /** A stream's list expires this long after its last event (ms). */
  ttlMs: number;
}

/** Five minutes: well past the transport's 30 s grace for a cut POST stream, and short for Redis memory. */
const EVENT_TTL_MS = 5 * 60_000;

export class RedisEventStore implements EventStore {
  readonly #redis: RedisAccess;
  readonly #local: MemoryEventStore;
  readonly #options: RedisEventStoreOptions;

  constructor(redis: RedisAccess, options: Partial<RedisEventStoreOptions> = {}) {
    this.#redis = redis;
    this.#options = { ...EVENT_STORE_DEFAULTS, ttlMs: EVENT_TTL_MS, ...options };
    this.#local = new MemoryEventStore(this.#options);
  }

  async append(streamId: string, id: string, data: string): Promise<void> {
    this.#local.append(streamId, id, data);
    const { client, key, run } = this.#redis;
    const list = key(`events:${streamId}`);
    const { maxEventsPerStream, ttlMs } = this.#options;
    await run(async () => {
      const replies = await client
        .multi()
        .rpush(list, `${id}\n${data}`)
        .ltrim(list, -maxEventsPerStream, -1)
        .pexpire(list, ttlMs)
        .exec();
      const failed = replies?.find(([err]) => err);
      if (failed) throw failed[0];
    });
  }

  async after(streamId: string, lastEventId: string): Promise<StoredEvent[] | undefined> {
    const { client, key, run } = this.#redis;
    let entries: string[];
    try {
      entries = await run(() => client.lrange(key(`events:${streamId}`), 0, -1));
    } catch (err) {
      if (err instanceof StoreUnavailable) return this.#local.after(streamId, lastEventId);
      throw err;
    }
    const events = entries.map((entry) => {
      const cut = entry.indexOf("\n");
      return { id: entry.slice(0, cut), data: entry.slice(cut + 1) };
    });
    return eventsAfter(events, lastEventId) ?? this.#local.after(streamId, lastEventId);
  }
}
