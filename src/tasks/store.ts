/**
 * Where task records live: a small interface a shared store (Redis) can implement, and the in-memory
 * default. Records are plain data; waiting for a task to finish is the service's business, not the store's.
 */
import type { TaskRecord } from "./model.ts";

export interface TaskStore {
  /** Adds a record; false when the store is full of tasks still running (nothing could be dropped). */
  put(record: TaskRecord): Promise<boolean>;
  /** The record, unless it expired or was dropped. */
  get(key: string): Promise<TaskRecord | undefined>;
  /** Merges `patch` into a record that still exists, and returns the new record. */
  update(key: string, patch: Partial<TaskRecord>): Promise<TaskRecord | undefined>;
  /** A principal's live records, oldest first. */
  list(principalId: string): Promise<TaskRecord[]>;
  delete(key: string): Promise<void>;
}

/**
 * Bounded and in process: records go when they expire (checked on access, no timers), and when the store
 * is full the oldest record not running (finished tasks, the index of forwarded ones) makes room. Lost
 * with the process.
 */
export class MemoryTaskStore implements TaskStore {
  readonly #records = new Map<string, TaskRecord>();
  readonly #max: () => number;
  readonly #now: () => number;

  constructor(options: { maxTasks: () => number; now?: () => number }) {
    this.#max = options.maxTasks;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#records.size;
  }

  async put(record: TaskRecord): Promise<boolean> {
    this.#sweep();
    if (this.#records.size >= this.#max()) {
      const victim = [...this.#records.values()].find((r) => !running(r));
      if (!victim) return false;
      this.#records.delete(victim.key);
    }
    this.#records.set(record.key, record);
    return true;
  }

  async get(key: string): Promise<TaskRecord | undefined> {
    const record = this.#records.get(key);
    if (record && record.expiresAt <= this.#now()) {
      this.#records.delete(key);
      return undefined;
    }
    return record;
  }

  async update(key: string, patch: Partial<TaskRecord>): Promise<TaskRecord | undefined> {
    const record = await this.get(key);
    if (!record) return undefined;
    const next = { ...record, ...patch };
    this.#records.set(key, next);
    return next;
  }

  async list(principalId: string): Promise<TaskRecord[]> {
    this.#sweep();
    return [...this.#records.values()].filter((r) => r.principalId === principalId);
  }

  async delete(key: string): Promise<void> {
    this.#records.delete(key);
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, record] of this.#records) if (record.expiresAt <= now) this.#records.delete(key);
  }
}

/** A task the gateway runs that has not finished: never dropped to make room. */
function running(record: TaskRecord): boolean {
  return record.origin === "gateway" && record.outcome === undefined && record.status !== "cancelled";
}
