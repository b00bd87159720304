/**
 * Tool pinning: the first definition seen of each upstream tool is pinned by its hash, and a later change
 * (a "rug pull": new description or schema smuggling instructions to the model) is reported until an
 * operator approves it (`toolgate pins approve`). Pins live in a store (stores/pins.ts): a JSON file by
 * default (catalog/pin-file.ts), one Redis hash shared by every replica when the cluster has Redis.
 *
 * Pins are keyed by the upstream's identity (`pinKey`: its name and a hash of its command and arguments or
 * URL), so two configs naming different servers alike never share pins.
 *
 * This class keeps the pins in memory (the catalog's gate is synchronous) and writes changes in the
 * background; each write merges only the entries it changed (`mergePin`), so an approval made by another
 * process (the CLI, another replica) is never lost to a concurrent write.
 */
import { createHash } from "node:crypto";
import type { UpstreamConfig } from "../config/load.ts";
import { ErrorCode, GatewayError } from "../errors.ts";
import {
  getPin,
  mergePin,
  type PinChange,
  type PinMap,
  type PinStore,
  type StoredPin,
  setPin,
} from "../stores/pins.ts";
import { StoreUnavailable } from "../stores/store.ts";
import { type Logger, silentLogger } from "../telemetry/log.ts";
import type { ToolGate } from "./catalog.ts";
import { FilePinStore } from "./pin-file.ts";

/** The parts of a tool definition that are pinned: everything the model reads or relies on. */
export interface PinnableTool {
  name: string;
  description?: string | undefined;
  inputSchema?: unknown;
  outputSchema?: unknown;
  annotations?: unknown;
}

export type PinCheck =
  | { status: "new"; hash: string }
  | { status: "same"; hash: string }
  | { status: "changed"; oldHash: string; newHash: string };

export interface PinEntry {
  upstream: string;
  tool: string;
  hash: string;
  pinnedAt: string;
  /** A changed definition seen since, waiting for approval. */
  pending?: { hash: string; seenAt: string } | undefined;
}

export interface ToolPinsOptions {
  now?: () => Date;
  logger?: Logger;
  /** Never write the store (`toolgate list`/`call` report pins but leave no state behind). */
  readOnly?: boolean;
}

/**
 * The key an upstream's pins are stored under: `name#<12 hex>` of what the server is (command, arguments and
 * cwd, or transport and URL; not env or headers, which carry rotating secrets).
 */
export function pinKey(upstream: Pick<UpstreamConfig, "name" | "transport">): string {
  const t = upstream.transport;
  const identity =
    t.type === "stdio"
      ? [t.type, t.command, ...t.args, t.cwd ?? ""]
      : t.type === "openapi"
        ? [t.type, t.spec ?? "endpoints", t.baseUrl ?? ""]
        : [t.type, t.url];
  return `${upstream.name}#${createHash("sha256").update(JSON.stringify(identity)).digest("hex").slice(0, 12)}`;
}

/** The upstream name in a pin key. */
export function pinKeyName(key: string): string {
  const at = key.lastIndexOf("#");
  return at === -1 ? key : key.slice(0, at);
}

/** JSON with object keys sorted at every level, so equal values always serialize the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** `sha256:<hex>` of a value's canonical JSON. */
export function hashJson(value: unknown): string {
  return `sha256:${createHash("sha256").update(canonicalJson(value)).digest("hex")}`;
}

export function toolHash(tool: PinnableTool): string {
  const { name, description, inputSchema, outputSchema, annotations } = tool;
  return hashJson({ name, description, inputSchema, outputSchema, annotations });
}

/** The store reads nothing yet, or cannot be read: a tool without a known pin is not trusted. */
export interface PinUnavailable {
  status: "unavailable";
  hash: string;
  reason: string;
}

export class ToolPins {
  readonly store: PinStore;
  readonly #now: () => Date;
  readonly #logger: Logger;
  readonly #readOnly: boolean;
  #pins: PinMap = new Map();
  /** Entries changed here and not yet written, by `upstream\0tool`. */
  #dirty = new Map<string, Omit<PinChange, "pin">>();
  #writing: Promise<void> = Promise.resolve();
  #queued = false;
  #writeError: unknown;
  /** The store was read once: pins are known. */
  #loaded = false;
  /** Why the store cannot be read now, if it cannot. */
  #unreadable: string | undefined;
  /** A tool was reported `unavailable` since the last read: the next good read must release it. */
  #heldUnread = false;
  readonly #listeners = new Set<() => void>();

  private constructor(store: PinStore, options: ToolPinsOptions) {
    this.store = store;
    this.#now = options.now ?? (() => new Date());
    this.#logger = options.logger ?? silentLogger;
    this.#readOnly = options.readOnly ?? false;
  }

  /**
   * Load the pins: a file path (the embedded store; a missing file is an empty store) or a store (Redis).
   * Throws GatewayError(ConfigInvalid) when the store is corrupt. A store that cannot be reached (Redis lost)
   * is no error: tools without a known pin are reported `unavailable` until it answers (see `check`).
   */
  static async open(store: string | PinStore, options: ToolPinsOptions = {}): Promise<ToolPins> {
    const pins = new ToolPins(
      typeof store === "string" ? new FilePinStore(store, options.logger) : store,
      options,
    );
    await pins.reload();
    pins.store.watch?.(() => {
      pins.reload().catch((err: unknown) => pins.#logger.error("cannot re-read the tool pins", { err }));
    });
    return pins;
  }

  /** Why the store cannot be read now (shown on status and in call errors), or undefined. */
  get unreadable(): string | undefined {
    if (this.#loaded && this.store.available) return undefined;
    return this.#unreadable ?? (this.#loaded ? "the store is unreachable" : "not read yet");
  }

  /** Called after pins changed in a way that may change a verdict (an approval elsewhere, the store came back). */
  onChange(listener: () => void): void {
    this.#listeners.add(listener);
  }

  /** Re-read the store, e.g. after `toolgate pins approve` ran in another process. Unwritten changes stay. */
  async reload(): Promise<void> {
    // In line with the writes, so a read that started before a write never replaces what that write stored.
    const reading = this.#writing.then(() => this.#reload());
    this.#writing = reading.catch(() => {});
    await reading;
  }

  async #reload(): Promise<void> {
    let stored: PinMap;
    try {
      stored = await this.store.load();
    } catch (err) {
      if (!(err instanceof StoreUnavailable)) throw err;
      this.#setUnreadable(err.message);
      return;
    }
    const before = this.#verdicts();
    this.#pins = this.#overlay(stored);
    this.#loaded = true;
    if (this.#unreadable !== undefined) {
      this.#unreadable = undefined;
      this.#logger.info("tool pins readable again", { store: this.store.where });
    }
    if (this.#dirty.size > 0 && !this.#readOnly) this.#schedule();
    const heldUnread = this.#heldUnread;
    this.#heldUnread = false;
    if (heldUnread || this.#verdicts() !== before) this.#changed();
  }

  /**
   * Compare a tool's definition with its pin; a new tool is pinned (written in the background, see `flush`).
   * While the store cannot be read, a tool without a known pin is `unavailable` rather than pinned anew.
   */
  check(upstream: string, tool: PinnableTool): PinCheck | PinUnavailable {
    const hash = toolHash(tool);
    const pin = getPin(this.#pins, upstream, tool.name);
    if (!pin) {
      const reason = this.unreadable;
      if (reason !== undefined) {
        this.#heldUnread = true;
        return { status: "unavailable", hash, reason };
      }
      this.#update(upstream, tool.name, { hash, pinnedAt: this.#now().toISOString() }, true);
      return { status: "new", hash };
    }
    if (pin.hash === hash) {
      if (pin.pending) this.#update(upstream, tool.name, { hash: pin.hash, pinnedAt: pin.pinnedAt });
      return { status: "same", hash };
    }
    if (pin.pending?.hash !== hash) {
      this.#update(upstream, tool.name, { ...pin, pending: { hash, seenAt: this.#now().toISOString() } });
    }
    return { status: "changed", oldHash: pin.hash, newHash: hash };
  }

  /**
   * Pin the pending definition of one tool, or of every changed tool of the upstream, and write the store.
   * Returns the approved entries. Throws GatewayError(ToolNotFound) for an upstream or tool never pinned,
   * GatewayError(Internal) naming the store when it cannot be read or written.
   */
  async approve(upstream: string, tool?: string): Promise<PinEntry[]> {
    const unreadable = this.unreadable;
    if (unreadable !== undefined) {
      throw new GatewayError(
        ErrorCode.Internal,
        `cannot read the tool pins (${this.store.where}): ${unreadable}`,
      );
    }
    const tools = this.#pins.get(upstream);
    const name = pinKeyName(upstream);
    if (!tools) throw new GatewayError(ErrorCode.ToolNotFound, `no pinned tools for upstream "${name}"`);
    if (tool !== undefined && !tools.has(tool)) {
      throw new GatewayError(
        ErrorCode.ToolNotFound,
        `tool "${tool}" of upstream "${name}" was never pinned`,
        {
          upstream,
          tool,
        },
      );
    }
    const approved: PinEntry[] = [];
    for (const [name, pin] of tools) {
      if ((tool !== undefined && name !== tool) || !pin.pending) continue;
      // Strictly later than the pin it replaces, even within one millisecond: the merge rule lets the later
      // pin win, and a replica still writing from the replaced view must lose to the approval.
      const at = Math.max(this.#now().getTime(), Date.parse(pin.pinnedAt) + 1);
      const next = { hash: pin.pending.hash, pinnedAt: new Date(at).toISOString() };
      this.#update(upstream, name, next);
      approved.push({ upstream, tool: name, ...next });
    }
    await this.flush();
    return approved;
  }

  list(): PinEntry[] {
    const out: PinEntry[] = [];
    for (const [upstream, tools] of this.#pins) {
      for (const [tool, pin] of tools) out.push({ upstream, tool, ...pin });
    }
    return out.sort((a, b) => a.upstream.localeCompare(b.upstream) || a.tool.localeCompare(b.tool));
  }

  /** Wait for background writes; throws the last write failure (GatewayError naming the store). */
  async flush(): Promise<void> {
    await this.#writing;
    const err = this.#writeError;
    this.#writeError = undefined;
    if (err !== undefined) throw err;
  }

  /** Waits for background writes (failures are logged already), then lets the store go. */
  async close(): Promise<void> {
    await this.#writing;
    await this.store.close?.();
  }

  #update(upstream: string, tool: string, pin: StoredPin, first = false): void {
    setPin(this.#pins, upstream, tool, pin);
    if (this.#readOnly) return;
    const key = `${upstream}\0${tool}`;
    this.#dirty.set(key, { upstream, tool, first: first || (this.#dirty.get(key)?.first ?? false) });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#queued) return;
    this.#queued = true;
    this.#writing = this.#writing.then(async () => {
      this.#queued = false;
      try {
        await this.#write();
      } catch (err) {
        this.#writeError = err;
        const what = this.store instanceof FilePinStore ? "file" : "store";
        this.#logger.error(`cannot write the tool pins ${what}`, { store: this.store.where, err });
      }
    });
  }

  async #write(): Promise<void> {
    const written = [...this.#dirty];
    this.#dirty.clear();
    const changes = written.flatMap(([, change]) => {
      const pin = getPin(this.#pins, change.upstream, change.tool);
      return pin ? [{ ...change, pin }] : [];
    });
    try {
      const stored = await this.store.save(changes);
      // Keep changes made while writing; take everything else from the store (other writers' pins and approvals).
      const before = this.#verdicts();
      this.#pins = this.#overlay(stored);
      if (this.#verdicts() !== before) this.#changed();
    } catch (err) {
      for (const [key, value] of written) if (!this.#dirty.has(key)) this.#dirty.set(key, value);
      if (err instanceof StoreUnavailable) {
        this.#setUnreadable(err.message);
        throw new GatewayError(
          ErrorCode.Internal,
          `cannot write the tool pins (${this.store.where}): ${err.message}`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** The stored pins with this process's unwritten changes merged in. */
  #overlay(stored: PinMap): PinMap {
    for (const change of this.#dirty.values()) {
      const mine = getPin(this.#pins, change.upstream, change.tool);
      if (!mine) continue;
      const pin = mergePin(getPin(stored, change.upstream, change.tool), { pin: mine, first: change.first });
      setPin(stored, change.upstream, change.tool, pin);
    }
    return stored;
  }

  /** What verdicts depend on: whether pins are known, and each pinned hash (not pending changes). */
  #verdicts(): string {
    const hashes: string[] = [];
    for (const [upstream, tools] of this.#pins) {
      for (const [tool, pin] of tools) hashes.push(`${upstream}\0${tool}\0${pin.hash}`);
    }
    return `${this.#loaded}\n${hashes.sort().join("\n")}`;
  }

  #setUnreadable(reason: string): void {
    if (this.#unreadable === undefined) {
      this.#logger.warn(
        "cannot read the tool pins: tools without a known pin are held (pinning mode hold) until the store answers",
        { store: this.store.where, reason },
      );
    }
    this.#unreadable = reason;
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }
}

/**
 * Adapt the store to the catalog's gate: a changed tool is held or flagged per `mode` until approved. While
 * the store cannot be read, a tool without a known pin is held (mode hold) or flagged (mode flag) as
 * `unverified`: its definition cannot be compared with the pin every replica shares, so it is not trusted.
 * Each tool's state is logged once when it changes, not on every catalog rebuild.
 */
export function createPinGate(
  pins: ToolPins,
  mode: "off" | "hold" | "flag",
  logger: Logger = silentLogger,
  /** The pin key of an upstream name (see `pinKey`); the name itself when absent. */
  keyOf: (upstream: string) => string = (upstream) => upstream,
): ToolGate {
  /** The last state logged per `upstream\0tool`: "unverified" or "changed <new hash>"; absent while trusted. */
  const logged = new Map<string, string>();
  /** True when the tool's state differs from the one last logged (and records it). */
  const changedState = (upstream: string, tool: string, state: string | undefined) => {
    const key = `${upstream}\0${tool}`;
    if (logged.get(key) === state) return false;
    if (state === undefined) logged.delete(key);
    else logged.set(key, state);
    return state !== undefined;
  };
  return (upstream, tool) => {
    if (mode === "off") return "ok";
    const result = pins.check(keyOf(upstream), tool);
    if (result.status === "unavailable") {
      if (changedState(upstream, tool.name, "unverified")) {
        logger.warn(`tool "${tool.name}" of upstream "${upstream}" has no pin readable now`, {
          upstream,
          tool: tool.name,
          reason: result.reason,
          action: mode === "hold" ? "held until the pins store answers" : "served with a warning (flag mode)",
        });
      }
      return { action: mode, cause: "unverified" };
    }
    if (result.status !== "changed") {
      changedState(upstream, tool.name, undefined);
      return "ok";
    }
    if (changedState(upstream, tool.name, `changed ${result.newHash}`)) {
      logger.warn(`tool "${tool.name}" of upstream "${upstream}" changed since it was pinned`, {
        upstream,
        tool: tool.name,
        oldHash: result.oldHash,
        newHash: result.newHash,
        action: mode === "hold" ? "held until `toolgate pins approve`" : "served with a warning (flag mode)",
      });
    }
    return { action: mode, cause: "changed" };
  };
}
