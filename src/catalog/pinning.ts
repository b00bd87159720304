/**
 * Tool pinning: the first definition seen of each upstream tool is pinned by its hash, and a later change
 * (a "rug pull": new description or schema smuggling instructions to the model) is reported until an
 * operator approves it (`toolgate pins approve`). Pins live in a JSON file written atomically.
 *
 * Pins are keyed by the upstream's identity (`pinKey`: its name and a hash of its command and arguments or
 * URL), so two configs naming different servers alike never share pins.
 *
 * The gateway and the CLI may both write the file: each writer re-reads it and overlays only the entries it
 * changed, the most recently pinned hash winning, so an approval is never lost to a concurrent write.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import type { UpstreamConfig } from "../config/load.ts";
import { ErrorCode, GatewayError } from "../errors.ts";
import { type Logger, silentLogger } from "../telemetry/log.ts";
import type { ToolGate } from "./catalog.ts";

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
  /** Never write the file (`toolgate list`/`call` report pins but leave no state behind). */
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

const PinSchema = z.object({
  hash: z.string(),
  pinnedAt: z.string(),
  pending: z.object({ hash: z.string(), seenAt: z.string() }).optional(),
});
type Pin = z.output<typeof PinSchema>;

/** Version 1 files keyed pins by upstream name only; they are ignored (tools are pinned anew). */
const FILE_VERSION = 2;

export class ToolPins {
  readonly file: string;
  readonly #now: () => Date;
  readonly #logger: Logger;
  readonly #readOnly: boolean;
  /** upstream → tool → pin. Maps, since tool names come from upstreams (think `__proto__`). */
  #pins = new Map<string, Map<string, Pin>>();
  /** Entries changed here and not yet written, as `[upstream, tool]`. */
  #dirty = new Map<string, [string, string]>();
  #writing: Promise<void> = Promise.resolve();
  #queued = false;
  #writeError: unknown;

  private constructor(file: string, options: ToolPinsOptions) {
    this.file = file;
    this.#now = options.now ?? (() => new Date());
    this.#logger = options.logger ?? silentLogger;
    this.#readOnly = options.readOnly ?? false;
  }

  /** Load the pins file (a missing file is an empty store). Throws GatewayError(ConfigInvalid) when it is corrupt. */
  static async open(file: string, options: ToolPinsOptions = {}): Promise<ToolPins> {
    const pins = new ToolPins(file, options);
    await pins.reload();
    return pins;
  }

  /** Re-read the file, e.g. after `toolgate pins approve` ran in another process. Unwritten changes stay. */
  async reload(): Promise<void> {
    const disk = await readPins(this.file, this.#logger);
    for (const [upstream, tool] of this.#dirty.values()) {
      setPin(disk, upstream, tool, merge(getPin(disk, upstream, tool), getPin(this.#pins, upstream, tool)));
    }
    this.#pins = disk;
  }

  /** Compare a tool's definition with its pin; a new tool is pinned (written in the background, see `flush`). */
  check(upstream: string, tool: PinnableTool): PinCheck {
    const hash = toolHash(tool);
    const pin = getPin(this.#pins, upstream, tool.name);
    if (!pin) {
      this.#update(upstream, tool.name, { hash, pinnedAt: this.#now().toISOString() });
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
   * Pin the pending definition of one tool, or of every changed tool of the upstream, and write the file.
   * Returns the approved entries. Throws GatewayError(ToolNotFound) for an upstream or tool never pinned.
   */
  async approve(upstream: string, tool?: string): Promise<PinEntry[]> {
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
      const next = { hash: pin.pending.hash, pinnedAt: this.#now().toISOString() };
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

  /** Wait for background writes; throws the last write failure (GatewayError Internal naming the file). */
  async flush(): Promise<void> {
    await this.#writing;
    const err = this.#writeError;
    this.#writeError = undefined;
    if (err !== undefined) throw err;
  }

  #update(upstream: string, tool: string, pin: Pin): void {
    setPin(this.#pins, upstream, tool, pin);
    if (this.#readOnly) return;
    this.#dirty.set(`${upstream}\0${tool}`, [upstream, tool]);
    if (this.#queued) return;
    this.#queued = true;
    this.#writing = this.#writing.then(async () => {
      this.#queued = false;
      try {
        await this.#write();
      } catch (err) {
        this.#writeError = err;
        this.#logger.error("cannot write the tool pins file", { file: this.file, err });
      }
    });
  }

  async #write(): Promise<void> {
    const written = [...this.#dirty];
    this.#dirty.clear();
    try {
      const disk = await readPins(this.file, this.#logger);
      for (const [, [upstream, tool]] of written) {
        setPin(disk, upstream, tool, merge(getPin(disk, upstream, tool), getPin(this.#pins, upstream, tool)));
      }
      await writeAtomic(this.file, serialize(disk));
      // Keep changes made while writing; take everything else from disk (other writers' approvals).
      for (const [upstream, tool] of this.#dirty.values()) {
        setPin(disk, upstream, tool, merge(getPin(disk, upstream, tool), getPin(this.#pins, upstream, tool)));
      }
      this.#pins = disk;
    } catch (err) {
      for (const [key, value] of written) if (!this.#dirty.has(key)) this.#dirty.set(key, value);
      throw err instanceof GatewayError
        ? err
        : new GatewayError(
            ErrorCode.Internal,
            `cannot write the pins file ${this.file}: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
    }
  }
}

/** Adapt the store to the catalog's gate: a changed tool is held or flagged per `mode` until approved. */
export function createPinGate(
  pins: ToolPins,
  mode: "off" | "hold" | "flag",
  logger: Logger = silentLogger,
  /** The pin key of an upstream name (see `pinKey`); the name itself when absent. */
  keyOf: (upstream: string) => string = (upstream) => upstream,
): ToolGate {
  return (upstream, tool) => {
    if (mode === "off") return "ok";
    const result = pins.check(keyOf(upstream), tool);
    if (result.status !== "changed") return "ok";
    logger.warn(`tool "${tool.name}" of upstream "${upstream}" changed since it was pinned`, {
      upstream,
      tool: tool.name,
      oldHash: result.oldHash,
      newHash: result.newHash,
      action: mode === "hold" ? "held until `toolgate pins approve`" : "served (flag mode)",
    });
    return mode;
  };
}

/**
 * The entry on disk and this process's changed one. Ours wins unless the disk's was pinned later (an
 * approval elsewhere); then our pending change survives only if it is not what got pinned.
 */
function merge(disk: Pin | undefined, mine: Pin | undefined): Pin | undefined {
  if (!disk || !mine) return mine ?? disk;
  if (mine.pinnedAt >= disk.pinnedAt) return mine;
  const pending = mine.pending && mine.pending.hash !== disk.hash ? mine.pending : disk.pending;
  return { hash: disk.hash, pinnedAt: disk.pinnedAt, ...(pending ? { pending } : {}) };
}

function getPin(pins: Map<string, Map<string, Pin>>, upstream: string, tool: string): Pin | undefined {
  return pins.get(upstream)?.get(tool);
}

function setPin(
  pins: Map<string, Map<string, Pin>>,
  upstream: string,
  tool: string,
  pin: Pin | undefined,
): void {
  if (!pin) return;
  const tools = pins.get(upstream) ?? new Map<string, Pin>();
  pins.set(upstream, tools.set(tool, pin));
}

async function readPins(file: string, logger: Logger): Promise<Map<string, Map<string, Pin>>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw new GatewayError(
      ErrorCode.ConfigInvalid,
      `cannot read the pins file ${file}: ${(err as Error).message}`,
    );
  }
  const corrupt = (why: string) =>
    new GatewayError(
      ErrorCode.ConfigInvalid,
      `the pins file ${file} is invalid (${why}); fix it, or delete it to pin every tool anew`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  const doc = raw as { version?: unknown; tools?: unknown };
  if (isObject(raw) && doc.version === 1) {
    logger.warn("the pins file has the old format keyed by upstream name only; tools are pinned anew", {
      file,
    });
    return new Map();
  }
  if (!isObject(raw) || doc.version !== FILE_VERSION || !isObject(doc.tools)) {
    throw corrupt(`expected {"version": ${FILE_VERSION}, "tools": {...}}`);
  }
  const pins = new Map<string, Map<string, Pin>>();
  for (const [upstream, tools] of Object.entries(doc.tools)) {
    if (!isObject(tools)) throw corrupt(`tools["${upstream}"] is not an object`);
    for (const [tool, value] of Object.entries(tools)) {
      const parsed = PinSchema.safeParse(value);
      if (!parsed.success)
        throw corrupt(`tools["${upstream}"]["${tool}"]: ${parsed.error.issues[0]?.message}`);
      setPin(pins, upstream, tool, parsed.data);
    }
  }
  return pins;
}

function serialize(pins: Map<string, Map<string, Pin>>): string {
  // Object.fromEntries defines own properties, so a tool named `__proto__` is stored as data.
  const tools = Object.fromEntries(
    [...pins].map(([upstream, byTool]) => [upstream, Object.fromEntries(byTool)] as const),
  );
  return `${JSON.stringify({ version: FILE_VERSION, tools }, null, 2)}\n`;
}

/** Write to a temporary file, fsync, then rename over the target: readers see the old or the new file, never half. */
async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${randomUUID()}.tmp`;
  try {
    const handle = await open(tmp, "w");
    try {
      await handle.writeFile(text, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
