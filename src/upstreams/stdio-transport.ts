/**
 * The client side of a stdio upstream: spawn the server, newline-delimited JSON both ways. It implements the
 * SDK's `Transport`, so the era probe (stdio-probe.ts), the 2025 connection (jsonrpc-connection.ts) and the
 * SDK's v2 client all run on it. It differs from the SDK's StdioClientTransport only where that costs CPU on
 * every message: a line is `JSON.parse`d and checked for the JSON-RPC envelope, not validated again by zod
 * (the connection reads only the envelope; results are forwarded as they are).
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Stream, Writable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { idAtEdges, LineReader } from "../protocol/lines.ts";
import {
  answeredId,
  describeInvalid,
  isJsonRpcMessage,
  MAX_ANSWER_BYTES,
  notAResponse,
  type OnMalformed,
} from "./message-shape.ts";

export interface StdioServer {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string | undefined;
  /** One line of the child's stderr (without the newline); without it, stderr goes to the gateway's. */
  onStderr?: ((line: string) => void) | undefined;
  /** How the child ended (its exit code, or the signal that killed it), told before `onclose`. */
  onExit?: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  /** A stdout line that is not a JSON-RPC message (a server logging to stdout); else it goes to `onerror`. */
  onNoise?: ((line: string) => void) | undefined;
  /**
   * Longest stdout line read (MAX_ANSWER_BYTES unless given): a longer one is not read, and the request it
   * answers, when its ends tell which, fails alone. (The SDK's ReadBuffer stops at 10 MiB.)
   */
  maxLineBytes?: number | undefined;
}

/** How much of a stdout line that is not JSON-RPC is reported. */
const MAX_NOISE_CHARS = 200;
/** Longest stderr line kept; a child writing megabytes without a newline must not grow memory. */
const MAX_STDERR_LINE = 8 * 1024;
/** How long `close` waits for the child after ending its stdin, and again after SIGTERM (as the SDK). */
const CLOSE_GRACE_MS = 2_000;
const SENT = Promise.resolve();

export class StdioTransport implements Transport {
  onmessage?: ((message: JSONRPCMessage) => void) | undefined;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  /** Set by the 2025 connection: a request whose answer broke the envelope fails at once. */
  onmalformed?: OnMalformed | undefined;
  readonly #server: StdioServer;
  #child: ChildProcess | undefined;
  readonly #lines: LineReader;
  /** Messages waiting for the child's stdin to drain, serialized only when they are written (see send). */
  #waiting: Waiting[] = [];
  /** Whether stdin holds this turn's writes (see #cork). */
  #corked = false;
  /** Ids of the requests written and neither answered nor cancelled: while there are any, writes are corked. */
  readonly #unanswered = new Set<string | number>();

  constructor(server: StdioServer) {
    this.#server = server;
    this.#lines = new LineReader(
      server.maxLineBytes ?? MAX_ANSWER_BYTES,
      (line) => this.#deliver(line),
      (edges) => this.#tooLong(idAtEdges(edges)),
    );
  }

  /** The child's pid while it runs. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  start(): Promise<void> {
    if (this.#child) return Promise.reject(new Error("StdioTransport already started"));
    const server = this.#server;
    return new Promise((resolve, reject) => {
      const child = spawn(server.command, server.args, {
        env: server.env,
        stdio: ["pipe", "pipe", server.onStderr ? "pipe" : "inherit"],
        shell: false,
        windowsHide: process.platform === "win32",
        cwd: server.cwd,
      });
      this.#child = child;
      child.on("error", (err) => {
        reject(err);
        this.onerror?.(err);
      });
      child.on("spawn", () => resolve());
      child.on("close", (code, signal) => {
        server.onExit?.(code, signal);
        this.#child = undefined;
        this.#dropWaiting();
        this.onclose?.();
      });
      child.stdin?.on("error", (err) => this.onerror?.(err));
      child.stdout?.on("data", (chunk: Buffer) => this.#lines.push(chunk));
      child.stdout?.on("error", (err) => this.onerror?.(err));
      // Attached before any output can arrive: no early line (a crash on startup) is lost.
      if (child.stderr && server.onStderr) pipeLines(child.stderr, server.onStderr);
    });
  }

  /**
   * Resolves once the message is handed to the child's stdin. Past the pipe's buffer a message waits as the
   * object it is, and is serialized when the pipe drains: serialized lines queued in the stream (256 calls of 64
   * KiB in flight: 16 MB of strings) outlived every young-generation collection and raised the CPU per call
   * with the number of calls in flight.
   */
  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.#child?.stdin;
    if (!stdin) return Promise.reject(new Error("Not connected"));
    if (this.#waiting.length === 0 && !stdin.writableNeedDrain) {
      try {
        // A lone request leaves at once: nothing else is in flight whose turn it could share a write with.
        if (this.#unanswered.size > 0) this.#cork(stdin);
        stdin.write(line(message));
      } catch (err) {
        return Promise.reject(err);
      }
      this.#track(message);
      return SENT;
    }
    return new Promise((resolve, reject) => {
      if (this.#waiting.push({ message, resolve, reject }) === 1) stdin.once("drain", this.#flush);
    });
  }

  /** Writes what waits until the pipe is full again. */
  readonly #flush = (): void => {
    const stdin = this.#child?.stdin;
    if (!stdin) return; // the child's 'close' rejects what waits
    this.#cork(stdin);
    let written = 0;
    for (; written < this.#waiting.length && !stdin.writableNeedDrain; written++) {
      const { message, resolve, reject } = this.#waiting[written] as Waiting;
      try {
        stdin.write(line(message));
        this.#track(message);
        resolve();
      } catch (err) {
        reject(err);
      }
    }
    this.#waiting = written === this.#waiting.length ? [] : this.#waiting.slice(written);
    if (this.#waiting.length > 0) stdin.once("drain", this.#flush);
  };

  /** Keeps `#unanswered` up to date with a message written to the child. */
  #track(message: JSONRPCMessage): void {
    const m = message as { id?: string | number; method?: string; params?: { requestId?: unknown } };
    if (m.method === undefined) return; // our answer to the child's request
    if (m.id !== undefined) this.#unanswered.add(m.id);
    else if (m.method === "notifications/cancelled")
      this.#unanswered.delete(m.params?.requestId as string | number);
  }

  /**
   * Holds stdin's writes until this turn of the event loop has run its I/O callbacks: the calls that arrived
   * together reach the child in one write, which wakes it once, rather than one write and one wake-up each.
   * Only while requests are in flight: a request alone would wait for the turn's end for nothing (at
   * concurrency 1, about 8 µs of every call's latency on the bench's host).
   */
  #cork(stdin: Writable): void {
    if (this.#corked) return;
    this.#corked = true;
    stdin.cork();
    setImmediate(() => {
      this.#corked = false;
      stdin.uncork();
    });
  }

  #dropWaiting(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const { reject } of waiting) reject(new Error("Not connected"));
  }

  /** End stdin, then SIGTERM, then SIGKILL, each after a grace period (the SDK transport's sequence). */
  async close(): Promise<void> {
    const child = this.#child;
    this.#lines.clear();
    this.#dropWaiting();
    this.#unanswered.clear();
    if (!child) return;
    this.#child = undefined;
    const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    try {
      child.stdin?.end();
    } catch {
      // Already gone.
    }
    await Promise.race([closed, delay(CLOSE_GRACE_MS)]);
    if (exited()) return;
    child.kill("SIGTERM");
    await Promise.race([closed, delay(CLOSE_GRACE_MS)]);
    if (!exited()) child.kill("SIGKILL");
  }

  /** A line past MAX_ANSWER_BYTES was dropped: the request it answered fails, if its ends tell which. */
  #tooLong(id: string | number | undefined): void {
    const max = this.#server.maxLineBytes ?? MAX_ANSWER_BYTES;
    const problem = `the upstream's answer is longer than ${max} bytes; toolgate read no more of it`;
    if (id === undefined || !this.onmalformed) {
      return void this.onerror?.(new Error(`a line longer than ${max} bytes was skipped`));
    }
    this.#unanswered.delete(id);
    this.onmalformed(id, problem);
  }

  #deliver(line: string): void {
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    if (text.trim() === "") return;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      message = undefined;
    }
    if (isJsonRpcMessage(message)) {
      if (!("method" in message) && message.id !== undefined) this.#unanswered.delete(message.id);
      return void this.onmessage?.(message);
    }
    const id = answeredId(message);
    if (id !== undefined) this.#unanswered.delete(id);
    if (id !== undefined && this.onmalformed) this.onmalformed(id, notAResponse(describeInvalid(message)));
    else if (this.#server.onNoise) this.#server.onNoise(text.slice(0, MAX_NOISE_CHARS));
    else this.onerror?.(new Error(`not a JSON-RPC message: ${text.slice(0, MAX_NOISE_CHARS)}`));
  }
}

interface Waiting {
  message: JSONRPCMessage;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function line(message: JSONRPCMessage): string {
  return `${JSON.stringify(message)}\n`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Lines of a text stream, each cut to MAX_STDERR_LINE; blank lines are dropped. */
function pipeLines(stream: Stream, onLine: (line: string) => void): void {
  const decoder = new StringDecoder("utf8");
  let buffer = "";
  stream.on("data", (chunk: Buffer) => {
    buffer += decoder.write(chunk);
    let newline = buffer.indexOf("\n");
    while (newline !== -1) {
      emit(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf("\n");
    }
    if (buffer.length > MAX_STDERR_LINE) {
      emit(buffer);
      buffer = "";
    }
  });
  stream.on("end", () => {
    buffer += decoder.end();
    if (buffer) emit(buffer);
    buffer = "";
  });
  function emit(line: string): void {
    const trimmed = line.replace(/\r$/, "").slice(0, MAX_STDERR_LINE);
    if (trimmed.trim()) onLine(trimmed);
  }
}
