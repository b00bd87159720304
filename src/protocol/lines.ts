/**
 * MCP's stdio framing, one JSON-RPC message per line, for both ends: toolgate reading an upstream's stdout
 * and a client's stdin. Each complete line is handed over decoded as UTF-8, in order; a line split over
 * chunks is held (as the chunks, joined once) until its newline. A line longer than the bound is dropped
 * whole, however it was chunked, and reported once it ends, with its first and last bytes (where the id of a
 * one-line JSON-RPC message sits, so its request can be answered); the next line is read as usual. A leaf:
 * imports nothing.
 */

const NEWLINE = 0x0a;
/** Bytes kept of each end of a line too long to hold. */
const EDGE_BYTES = 256;

/** The two ends of a line that was too long to hold, decoded as UTF-8. */
export interface LineEdges {
  head: string;
  tail: string;
}

export class LineReader {
  readonly #maxLineBytes: number;
  readonly #onLine: (line: string) => void;
  readonly #onTooLong: (edges: LineEdges) => void;
  /** The start of a line still waiting for its newline. */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** Set once a line outgrew the bound before its newline: the rest of it is dropped, its edges kept. */
  #skipping = false;
  #head: Buffer = Buffer.alloc(0);
  #tail: Buffer = Buffer.alloc(0);

  constructor(maxLineBytes: number, onLine: (line: string) => void, onTooLong: (edges: LineEdges) => void) {
    this.#maxLineBytes = maxLineBytes;
    this.#onLine = onLine;
    this.#onTooLong = onTooLong;
  }

  /** Every complete line of `chunk`, in order; the rest waits for the next chunk. */
  push(chunk: Buffer): void {
    let start = 0;
    let newline = chunk.indexOf(NEWLINE);
    while (newline !== -1) {
      const bytes = this.#partialBytes + newline - start;
      if (this.#skipping) {
        this.#skipping = false;
        this.#keepTail(chunk.subarray(start, newline));
        this.#tooLong();
      } else if (bytes > this.#maxLineBytes) {
        this.#partial.push(chunk.subarray(start, newline));
        this.#keepEdges();
        this.#tooLong();
      } else if (this.#partialBytes > 0) {
        this.#partial.push(chunk.subarray(start, newline));
        const line = Buffer.concat(this.#partial).toString("utf8");
        this.#drop();
        this.#onLine(line);
      } else {
        this.#onLine(chunk.toString("utf8", start, newline));
      }
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    if (start === chunk.length) return;
    if (this.#skipping) return void this.#keepTail(chunk.subarray(start));
    this.#partialBytes += chunk.length - start;
    this.#partial.push(start === 0 ? chunk : chunk.subarray(start));
    if (this.#partialBytes <= this.#maxLineBytes) return;
    this.#keepEdges();
    this.#skipping = true;
  }

  /** Forgets the line held, if any (the stream ended or starts over). */
  clear(): void {
    this.#drop();
    this.#skipping = false;
  }

  /** The line held grew too long: keep its two ends (copies, as the chunks may be reused) and drop it. */
  #keepEdges(): void {
    const parts = this.#partial;
    this.#head = Buffer.from(Buffer.concat(firstParts(parts, EDGE_BYTES)).subarray(0, EDGE_BYTES));
    this.#tail = Buffer.alloc(0);
    for (const part of lastParts(parts, EDGE_BYTES)) this.#keepTail(part);
    this.#drop();
  }

  #keepTail(bytes: Buffer): void {
    const joined = Buffer.concat([this.#tail, bytes.subarray(Math.max(0, bytes.length - EDGE_BYTES))]);
    this.#tail = Buffer.from(joined.subarray(Math.max(0, joined.length - EDGE_BYTES)));
  }

  #tooLong(): void {
    const edges = { head: this.#head.toString("utf8"), tail: this.#tail.toString("utf8") };
    this.#head = Buffer.alloc(0);
    this.#tail = Buffer.alloc(0);
    this.#onTooLong(edges);
  }

  #drop(): void {
    this.#partial = [];
    this.#partialBytes = 0;
  }
}

/** The id of the one-line JSON-RPC message a too-long line held, where it can be told from the line's ends. */
export function idAtEdges({ head, tail }: LineEdges): string | number | undefined {
  // First among the top-level keys (`{"jsonrpc":"2.0","id":…` or `{"id":…`), or last: `…,"id":…}` with
  // nothing after it (an `id` closing a nested object would be followed by another `}`).
  const first = /^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*,/.exec(
    head,
  );
  const last = /,\s*"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*\}\s*\r?$/.exec(tail);
  const raw = first?.[1] ?? last?.[1];
  if (raw === undefined) return undefined;
  return raw.startsWith('"') ? (JSON.parse(raw) as string) : Number(raw);
}

/** The first parts of `parts` that hold at least `bytes` bytes. */
function firstParts(parts: Buffer[], bytes: number): Buffer[] {
  const taken: Buffer[] = [];
  let held = 0;
  for (const part of parts) {
    if (held >= bytes) break;
    taken.push(part);
    held += part.length;
  }
  return taken;
}

/** The last parts of `parts` that hold at least `bytes` bytes, in order. */
function lastParts(parts: Buffer[], bytes: number): Buffer[] {
  let held = 0;
  let from = parts.length;
  while (from > 0 && held < bytes) held += (parts[--from] as Buffer).length;
  return parts.slice(from);
}
