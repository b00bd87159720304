/**
 * Events of 2025-era SSE response streams, kept so a client that lost a stream can reconnect with
 * `Last-Event-ID` and get what it missed (Streamable HTTP resumability, 2025-11-25). The interface is small
 * and asynchronous so a shared store (Redis) can replace the in-memory default. Event ids are minted by the
 * transport (`<streamId>_<seq>`), so appending never waits on the store; events are stored as the JSON text
 * that went on the wire.
 */

export interface StoredEvent {
  id: string;
  /** The JSON-RPC message, serialized. */
  data: string;
}

export interface EventStore {
  /** Record one event of a stream; `id` sorts after the stream's earlier ids. */
  append(streamId: string, id: string, data: string): void | Promise<void>;
  /** The events of `streamId` after `lastEventId`, or undefined when the store no longer holds that point. */
  after(
    streamId: string,
    lastEventId: string,
  ): StoredEvent[] | undefined | Promise<StoredEvent[] | undefined>;
}

export interface MemoryEventStoreOptions {
  /** Streams held; the oldest is forgotten first. */
  maxStreams: number;
  /** Events held per stream; the oldest are dropped first. */
  maxEventsPerStream: number;
  /** Bytes of event data held in all; the oldest streams are forgotten first. */
  maxBytes: number;
}

export const EVENT_STORE_DEFAULTS: MemoryEventStoreOptions = {
  maxStreams: 1_000,
  maxEventsPerStream: 100,
  maxBytes: 64 * 1024 * 1024,
};

/** The in-memory default: bounded by streams, events per stream and bytes, so memory stays flat under load. */
export class MemoryEventStore implements EventStore {
  readonly #streams = new Map<string, { events: StoredEvent[]; bytes: number }>();
  readonly #options: MemoryEventStoreOptions;
  #bytes = 0;

  constructor(options: Partial<MemoryEventStoreOptions> = {}) {
    this.#options = { ...EVENT_STORE_DEFAULTS, ...options };
  }

  get streams(): number {
    return this.#streams.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  append(streamId: string, id: string, data: string): void {
    let stream = this.#streams.get(streamId);
    if (!stream) {
      stream = { events: [], bytes: 0 };
      this.#streams.set(streamId, stream);
    }
    stream.events.push({ id, data });
    stream.bytes += data.length;
    this.#bytes += data.length;
    if (stream.events.length > this.#options.maxEventsPerStream) {
      const dropped = stream.events.shift();
      stream.bytes -= dropped?.data.length ?? 0;
      this.#bytes -= dropped?.data.length ?? 0;
    }
    while (
      (this.#streams.size > this.#options.maxStreams || this.#bytes > this.#options.maxBytes) &&
      this.#streams.size > 0
    ) {
      const [oldest, forgotten] = this.#streams.entries().next().value as [string, { bytes: number }];
      this.#streams.delete(oldest);
      this.#bytes -= forgotten.bytes;
    }
  }

  after(streamId: string, lastEventId: string): StoredEvent[] | undefined {
    const events = this.#streams.get(streamId)?.events;
    return events && eventsAfter(events, lastEventId);
  }
}

/** The held events after `lastEventId`; undefined when that point was dropped, events are missing, or none are held. */
export function eventsAfter(events: StoredEvent[], lastEventId: string): StoredEvent[] | undefined {
  if (events.length === 0) return undefined;
  const seq = sequence(lastEventId);
  // The last event the client saw must still be held (or immediately precede the oldest one held).
  const first = events[0] ? sequence(events[0].id) : Number.POSITIVE_INFINITY;
  if (seq < first - 1) return undefined;
  const missed = events.filter((e) => sequence(e.id) > seq);
  // A gap (events a shared store failed to record) cannot be replayed without loss.
  if (missed.some((e, i) => sequence(e.id) !== seq + 1 + i)) return undefined;
  return missed;
}

/** `<streamId>_<seq>` → streamId. */
export function streamOf(eventId: string): string {
  const cut = eventId.lastIndexOf("_");
  return cut < 0 ? "" : eventId.slice(0, cut);
}

function sequence(eventId: string): number {
  return Number(eventId.slice(eventId.lastIndexOf("_") + 1));
}
