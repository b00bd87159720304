/**
 * The last lines a stdio upstream wrote to stderr, bounded in lines and bytes: when the process exits, the
 * useful line (`Error: Cannot find module …`) is rarely the last one (`Node.js v24.21.0`).
 */
export const STDERR_TAIL_LINES = 20;
export const STDERR_TAIL_CHARS = 4096;

export class StderrTail {
  #lines: string[] = [];
  #chars = 0;

  push(line: string): void {
    this.#lines.push(line);
    this.#chars += line.length;
    while (
      this.#lines.length > STDERR_TAIL_LINES ||
      (this.#chars > STDERR_TAIL_CHARS && this.#lines.length > 1)
    ) {
      this.#chars -= (this.#lines.shift() as string).length;
    }
  }

  clear(): void {
    this.#lines = [];
    this.#chars = 0;
  }

  /** The kept lines, oldest first; one line longer than the byte bound is cut to its end. */
  lines(): string[] {
    return this.#lines.map((l) => (l.length > STDERR_TAIL_CHARS ? `…${l.slice(-STDERR_TAIL_CHARS)}` : l));
  }
}
