/**
 * Server-sent events (WHATWG HTML) as toolgate's HTTP transports read them: an incremental parser, and bytes
 * to text chunk by chunk. Shared by Streamable HTTP (http-transport.ts) and legacy HTTP+SSE (sse-transport.ts).
 */
import { StringDecoder } from "node:string_decoder";
import { MAX_ANSWER_BYTES } from "./message-shape.ts";

/** The head of an event that is a message with data, as servers write it. */
const SINGLE_MESSAGE = "event: message\ndata: ";

/**
 * Bytes to text chunk by chunk: a plain toString while chunks end on a character boundary (an ASCII last byte
 * says so; JSON and SSE framing end that way), a StringDecoder from the first chunk that does not.
 */
export class Utf8Chunks {
  #decoder: StringDecoder | undefined;

  text(bytes: Buffer): string {
    if (this.#decoder === undefined) {
      if (bytes.length === 0 || (bytes[bytes.length - 1] as number) < 0x80) return bytes.toString();
      this.#decoder = new StringDecoder("utf8");
    }
    return this.#decoder.write(bytes);
  }
}

export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/**
 * An incremental parser of `text/event-stream` (WHATWG HTML, server-sent events): fields data (multi-line),
 * event, id and retry; comments; LF, CR or CRLF line ends, also split across chunks. An event is dispatched
 * at its blank line when it has a data line or an id.
 */
export class SseParser {
  #pending = "";
  #data = "";
  #dataLines = 0;
  #event: string | undefined;
  #id: string | undefined;
  #afterCR = false;
  #first: boolean;

  readonly #onEvent: (event: SseEvent) => void;
  readonly #onRetry: (ms: number) => void;

  /** `atStart` false: the stream's first chunks went elsewhere (singleMessage), a BOM is not stripped. */
  constructor(onEvent: (event: SseEvent) => void, onRetry: (ms: number) => void = () => {}, atStart = true) {
    this.#onEvent = onEvent;
    this.#onRetry = onRetry;
    this.#first = atStart;
  }

  /**
   * The data of `chunk` when it is exactly one whole `event: message` event with one data line and nothing
   * else (how servers frame an answer, and how it arrives: in one read), else undefined. Read at the start of
   * a stream, it spares the line-by-line parse.
   */
  static singleMessage(chunk: string): string | undefined {
    const end = chunk.length - 2;
    if (
      !chunk.startsWith(SINGLE_MESSAGE) ||
      chunk.charCodeAt(end) !== 10 ||
      chunk.charCodeAt(end + 1) !== 10 ||
      chunk.indexOf("\n", SINGLE_MESSAGE.length) !== end ||
      chunk.indexOf("\r", SINGLE_MESSAGE.length) !== -1
    ) {
      return undefined;
    }
    return chunk.slice(SINGLE_MESSAGE.length, end);
  }

  /** Parses a chunk; false when a line or an event outgrew the limit (the stream should be dropped). */
  feed(chunk: string): boolean {
    if (this.#first) {
      this.#first = false;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    if (this.#afterCR && chunk.charCodeAt(0) === 10) chunk = chunk.slice(1);
    this.#afterCR = false;
    if (chunk.indexOf("\n") === -1 && chunk.indexOf("\r") === -1) {
      // The middle of a long line: kept without scanning what came before again.
      this.#pending += chunk;
      return this.#pending.length + this.#data.length <= MAX_ANSWER_BYTES;
    }
    let text = this.#pending ? this.#pending + chunk : chunk;
    if (text.includes("\r")) {
      if (text.endsWith("\r")) {
        this.#afterCR = true;
        text = `${text.slice(0, -1)}\n`;
      }
      text = text.replace(/\r\n?/g, "\n");
    }
    let start = 0;
    let end = text.indexOf("\n");
    while (end !== -1) {
      this.#line(text, start, end);
      start = end + 1;
      end = text.indexOf("\n", start);
    }
    this.#pending = start === 0 ? text : text.slice(start);
    return this.#pending.length + this.#data.length <= MAX_ANSWER_BYTES;
  }

  #line(text: string, start: number, end: number): void {
    if (start === end) {
      if (this.#dataLines > 0 || this.#id !== undefined) {
        this.#onEvent({ id: this.#id, event: this.#event, data: this.#data });
      }
      this.#data = "";
      this.#dataLines = 0;
      this.#event = undefined;
      this.#id = undefined;
      return;
    }
    if (text.charCodeAt(start) === 58) return; // ':' a comment
    let colon = text.indexOf(":", start);
    if (colon === -1 || colon > end) colon = end;
    const field = text.slice(start, colon);
    let valueStart = colon + 1;
    if (text.charCodeAt(valueStart) === 32) valueStart++;
    const value = colon === end ? "" : text.slice(valueStart, end);
    switch (field) {
      case "data":
        this.#data = this.#dataLines++ === 0 ? value : `${this.#data}\n${value}`;
        break;
      case "event":
        this.#event = value || undefined;
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.#onRetry(Number.parseInt(value, 10));
        break;
    }
  }
}
