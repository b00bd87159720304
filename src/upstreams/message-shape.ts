/**
 * The JSON-RPC 2.0 envelope an upstream's message must have, checked once where each transport reads it (the
 * connection above reads only the envelope; results are forwarded as they are).
 */
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

/**
 * A request or notification (`method`, object `params`), or a response to a string or number id: an object
 * `result`, or an `error` with a numeric code and a message (an error may lack the id, as for a parse error).
 */
export function isJsonRpcMessage(value: unknown): value is JSONRPCMessage {
  if (!isObject(value) || value.jsonrpc !== "2.0") return false;
  const { id, method } = value;
  const validId = typeof id === "string" || typeof id === "number";
  if (typeof method === "string") {
    return (id === undefined || validId) && (value.params === undefined || isObject(value.params));
  }
  if (method !== undefined) return false;
  if ("result" in value) return validId && isObject(value.result) && !("error" in value);
  const error = value.error;
  return (
    (id === undefined || id === null || validId) &&
    isObject(error) &&
    typeof error.code === "number" &&
    typeof error.message === "string"
  );
}

/**
 * Largest answer read from an upstream, whatever carries it (a JSON body, an SSE event, a stdio line): a larger
 * one fails its request, not the gateway's memory.
 */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** A message that failed `isJsonRpcMessage`, as an excerpt a person can read in an error. */
export function describeInvalid(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * The request a JSON-RPC 2.0 response that breaks the envelope (a result that is no object, an error without a
 * code) still names, so that request can fail now instead of at its timeout. Undefined when none can be told.
 */
export function answeredId(value: unknown): string | number | undefined {
  if (!isObject(value) || value.jsonrpc !== "2.0" || value.method !== undefined) return undefined;
  const { id } = value;
  return typeof id === "string" || typeof id === "number" ? id : undefined;
}

/**
 * What a transport tells the connection above it when a request's answer cannot be used (it broke the
 * envelope, or was too long to read): the request, and a sentence saying what was wrong.
 */
export type OnMalformed = (id: string | number, problem: string) => void;

/** The problem of an answer that broke the envelope, quoting it (`describeInvalid`). */
export function notAResponse(description: string): string {
  return `the upstream's answer is not a JSON-RPC response: ${description}`;
}

/** A request's answer that could not be used: the upstream's fault, and only this request's. */
export class MalformedAnswerError extends Error {
  constructor(problem: string) {
    super(problem);
    this.name = "MalformedAnswerError";
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
