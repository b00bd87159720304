/**
 * Validation of one incoming JSON-RPC message against the SDK's `JSONRPCMessageSchema`, with a plain check
 * first for the shape nearly every message has (a request or notification whose envelope holds only
 * `jsonrpc`, `id`, `method`, `params`). That check accepts only what the schema accepts and passes the
 * parsed object on as it is (zod would copy it); anything else (responses, unusual `_meta`, invalid
 * messages) goes to zod, which decides and words the error as before.
 */
import {
  InitializeRequestSchema,
  type JSONRPCMessage,
  JSONRPCMessageSchema,
  RELATED_TASK_META_KEY,
} from "@modelcontextprotocol/sdk/types.js";
import { RpcCode } from "../errors.ts";

/** The message, or undefined when it is not a valid JSON-RPC 2.0 message. */
export function toJsonRpcMessage(value: unknown): JSONRPCMessage | undefined {
  if (isPlainRequestOrNotification(value)) return value;
  const checked = JSONRPCMessageSchema.safeParse(value);
  return checked.success ? checked.data : undefined;
}

/**
 * What is wrong with an `initialize` request, as a sentence naming each field; undefined for a valid one and for
 * any other message. The SDK parses `initialize` itself, and would answer a malformed one with -32603 and the
 * parser's dump.
 */
export function initializeProblem(message: JSONRPCMessage): string | undefined {
  if (!("method" in message) || message.method !== "initialize" || !("id" in message)) return undefined;
  const checked = InitializeRequestSchema.safeParse(message);
  if (checked.success) return undefined;
  const issues = checked.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
  return `initialize needs params {protocolVersion, capabilities, clientInfo: {name, version}}; ${issues.join("; ")}`;
}

/** Certainly a request or notification as the schema (strict envelope, loose params) accepts it. */
function isPlainRequestOrNotification(value: unknown): value is JSONRPCMessage {
  if (!isObject(value)) return false;
  for (const key in value) {
    if (key !== "jsonrpc" && key !== "id" && key !== "method" && key !== "params") return false;
  }
  if (value.jsonrpc !== "2.0" || typeof value.method !== "string") return false;
  if ("id" in value && !isId(value.id)) return false;
  if (!("params" in value)) return true;
  const { params } = value;
  if (!isObject(params)) return false;
  if (!("_meta" in params)) return true;
  const meta = params._meta;
  if (!isObject(meta)) return false;
  // The related-task key has a schema of its own: left to zod.
  if (RELATED_TASK_META_KEY in meta) return false;
  return !("progressToken" in meta) || isId(meta.progressToken);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A request id or progress token: a string or an integer. */
function isId(value: unknown): boolean {
  return typeof value === "string" || Number.isSafeInteger(value);
}

/** What the stdio and WebSocket faces answer for text that is not a message: the error, and the id if any. */
export class Refusal {
  readonly rpcCode: number;
  readonly message: string;
  readonly id: string | number | undefined;

  constructor(rpcCode: number, message: string, id?: string | number) {
    this.rpcCode = rpcCode;
    this.message = message;
    this.id = id;
  }
}

/** One text message (a stdio line, a WebSocket frame, named by `unit`): the message, or why it is not one. */
export function parseMessage(text: string, unit: string): JSONRPCMessage | Refusal {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return new Refusal(RpcCode.ParseError, `the ${unit} is not valid JSON: ${(err as Error).message}`);
  }
  return (
    toJsonRpcMessage(json) ??
    new Refusal(RpcCode.InvalidRequest, `the ${unit} is not a JSON-RPC 2.0 message`, idOf(json))
  );
}

/** The id of a malformed request, so its sender can match the error; never a response's id. */
function idOf(json: unknown): string | number | undefined {
  const { id, method } = (json ?? {}) as { id?: unknown; method?: unknown };
  if (method === undefined) return undefined;
  return typeof id === "string" || typeof id === "number" ? id : undefined;
}
