/**
 * MCP's stdio framing, one JSON-RPC message per line, for both ends: toolgate reading an upstream's stdout
 * and a client's stdin. Each complete line is handed over decoded as UTF-8, in order; a line split over
 * chunks is held (as the chunks, joined once) until its newline. A line longer than the bound is dropped
 * whole and reported once, however it was chunked, and the next line is read as usual. A leaf: imports
 * nothing.
 */

const NEWLINE = 0x0a;

export class LineReader {
  readonly #maxLineBytes: number;
  readonly #onLine: (line: string) => void;
  readonly #onTooLong: () => void;
  /** The start of a line still waiting for its newline. */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** Set once a line outgrew the bound before its newline: the rest of it is dropped. */
  #skipping = false;

  constructor(maxLineBytes: number, onLine: (line: string) => void, onTooLong: () => void) {
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
      } else if (bytes > this.#maxLineBytes) {
        this.#drop();
        this.#onTooLong();
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
    if (start === chunk.length || this.#skipping) return;
    this.#partialBytes += chunk.length - start;
    this.#partial.push(start === 0 ? chunk : chunk.subarray(start));
    if (this.#partialBytes <= this.#maxLineBytes) return;
    this.#drop();
    this.#skipping = true;
    this.#onTooLong();
  }

  /** Forgets the line held, if any (the stream ended or starts over). */
  clear(): void {
    this.#drop();
    this.#skipping = false;
  }

  #drop(): void {
    this.#partial = [];
    this.#partialBytes = 0;
  }
}
