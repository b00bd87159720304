/**
 * Events of 2025-era SSE response streams, kept so a client that lost a stream can reconnect with
 * `Last-Event-ID` and get what it missed (Streamable HTTP resumability, 2025-11-25). The interface is small
 * and asynchronous so a shared store (Redis) can replace the in-memory default; event ids are minted by the
 * transport (`<streamId>_<seq>`), so appending never waits on the store.
 */
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

export interface StoredEvent {
  id: string;
  message: JSONRPCMessage;
}

export interface EventStore {
  /** Record one event of a stream; `id` sorts after the stream's earlier ids. */
  append(streamId: string, id: string, message: JSONRPCMessage): void | Promise<void>;
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
}

/** The in-memory default: bounded by streams and events per stream, so memory stays flat under load. */
export class MemoryEventStore implements EventStore {
  readonly #streams = new Map<string, StoredEvent[]>();
  readonly #options: MemoryEventStoreOptions;

  constructor(options: MemoryEventStoreOptions = { maxStreams: 1_000, maxEventsPerStream: 100 }) {
    this.#options = options;
  }

  get streams(): number {
    return this.#streams.size;
  }

  append(streamId: string, id: string, message: JSONRPCMessage): void {
    let events = this.#streams.get(streamId);
    if (!events) {
      events = [];
      this.#streams.set(streamId, events);
      if (this.#streams.size > this.#options.maxStreams) {
        const oldest = this.#streams.keys().next().value;
        if (oldest !== undefined) this.#streams.delete(oldest);
      }
    }
    events.push({ id, message });
    if (events.length > this.#options.maxEventsPerStream) events.shift();
  }

  after(streamId: string, lastEventId: string): StoredEvent[] | undefined {
    const events = this.#streams.get(streamId);
    if (!events) return undefined;
    const seq = sequence(lastEventId);
    // The last event the client saw must still be held (or be the stream's priming event, seq 0).
    const first = events[0] ? sequence(events[0].id) : Number.POSITIVE_INFINITY;
    if (seq < first - 1) return undefined;
    return events.filter((e) => sequence(e.id) > seq);
  }
}

/** `<streamId>_<seq>` → streamId. */
export function streamOf(eventId: string): string {
  const cut = eventId.lastIndexOf("_");
  return cut < 0 ? "" : eventId.slice(0, cut);
}

function sequence(eventId: string): number {
  return Number(eventId.slice(eventId.lastIndexOf("_") + 1));
}
