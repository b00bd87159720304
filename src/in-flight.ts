/**
 * Registries for what is in flight (calls, exchanges), where every call adds an entry and removes it again.
 * Not a Map or Set: when V8 rehashes a Map's or Set's table it links the old table to the new one (for live
 * iterators) and leaves the old table's entries in place. Once a full GC has promoted a table to the old
 * generation, that dead table keeps its successor alive through every scavenge, which keeps the next, and with
 * them every entry that passed through: on a gateway under load every call's objects were promoted (1.7–9 MB
 * per scavenge) until the next full GC, which promoted the current table and started the chain again
 * (docs/PERFORMANCE.md, _Who pays for a wake-up_). A dictionary object and an array have no such link.
 */

/** Entries by a number or string key, on a dictionary object. */
export class InFlightTable<V> {
  #entries: Record<string | number, V> = Object.create(null);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(key: string | number): V | undefined {
    return this.#entries[key];
  }

  has(key: string | number): boolean {
    return this.#entries[key] !== undefined;
  }

  /** `value` must not be undefined (undefined means absent). */
  set(key: string | number, value: V): void {
    if (this.#entries[key] === undefined) this.#size++;
    this.#entries[key] = value;
  }

  delete(key: string | number): boolean {
    if (this.#entries[key] === undefined) return false;
    delete this.#entries[key];
    this.#size--;
    return true;
  }

  values(): V[] {
    return Object.values(this.#entries);
  }

  keys(): string[] {
    return Object.keys(this.#entries);
  }

  clear(): void {
    this.#entries = Object.create(null);
    this.#size = 0;
  }
}

/** An unordered set of objects: an array, each member's place kept beside it, removal by swapping the last in. */
export class InFlightSet<T extends object> {
  readonly #members: T[] = [];
  readonly #places = new WeakMap<T, number>();

  get size(): number {
    return this.#members.length;
  }

  has(member: T): boolean {
    return this.#places.has(member);
  }

  add(member: T): void {
    if (this.#places.has(member)) return;
    this.#places.set(member, this.#members.length);
    this.#members.push(member);
  }

  delete(member: T): boolean {
    const place = this.#places.get(member);
    if (place === undefined) return false;
    this.#places.delete(member);
    const last = this.#members.pop() as T;
    if (last !== member) {
      this.#members[place] = last;
      this.#places.set(last, place);
    }
    return true;
  }

  /** A copy: members may leave while the caller goes through them. */
  values(): T[] {
    return [...this.#members];
  }

  [Symbol.iterator](): Iterator<T> {
    return this.values()[Symbol.iterator]();
  }
}
