/**
 * The embedded pins store: one JSON file (`security.pinning.file`, in `gateway.stateDir` by default), written
 * atomically. The gateway and the CLI may both write it: each write re-reads the file and merges only the
 * entries it changes (stores/pins.ts `mergePin`), so an approval is never lost to a concurrent write.
 */
import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { ErrorCode, GatewayError } from "../errors.ts";
import {
  getPin,
  mergePin,
  type PinChange,
  type PinMap,
  type PinStore,
  StoredPinSchema,
  setPin,
} from "../stores/pins.ts";
import { type Logger, silentLogger } from "../telemetry/log.ts";

/** Version 1 files keyed pins by upstream name only; they are ignored (tools are pinned anew). */
const FILE_VERSION = 2;

export class FilePinStore implements PinStore {
  readonly file: string;
  readonly where: string;
  readonly available = true;
  readonly #logger: Logger;

  constructor(file: string, logger: Logger = silentLogger) {
    this.file = file;
    this.where = file;
    this.#logger = logger;
  }

  load(): Promise<PinMap> {
    return readPins(this.file, this.#logger);
  }

  async save(changes: readonly PinChange[]): Promise<PinMap> {
    try {
      const disk = await readPins(this.file, this.#logger);
      for (const change of changes) {
        setPin(
          disk,
          change.upstream,
          change.tool,
          mergePin(getPin(disk, change.upstream, change.tool), change),
        );
      }
      await writeAtomic(this.file, serialize(disk));
      return disk;
    } catch (err) {
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

async function readPins(file: string, logger: Logger): Promise<PinMap> {
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
  const pins: PinMap = new Map();
  for (const [upstream, tools] of Object.entries(doc.tools)) {
    if (!isObject(tools)) throw corrupt(`tools["${upstream}"] is not an object`);
    for (const [tool, value] of Object.entries(tools)) {
      const parsed = StoredPinSchema.safeParse(value);
      if (!parsed.success)
        throw corrupt(`tools["${upstream}"]["${tool}"]: ${parsed.error.issues[0]?.message}`);
      setPin(pins, upstream, tool, parsed.data);
    }
  }
  return pins;
}

function serialize(pins: PinMap): string {
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
