/**
 * The one error type of the gateway. Every failure that reaches a client, a metric or a policy decision
 * is a GatewayError with a code from ErrorCode; `classify()` gives its class and `toWire()` its MCP form.
 */

export const ErrorCode = {
  /** The upstream is not connected (down, starting, or its process died). */
  UpstreamUnavailable: "UpstreamUnavailable",
  /** The upstream did not answer within a timeout; the request was cancelled upstream. */
  UpstreamTimeout: "UpstreamTimeout",
  /** The upstream answered with a JSON-RPC error. */
  UpstreamError: "UpstreamError",
  /** The connection to the upstream was lost while the call was in flight. */
  ConnectionLost: "ConnectionLost",
  /** A circuit breaker is open and fails calls fast. */
  CircuitOpen: "CircuitOpen",
  /** The concurrency queue is full. */
  QueueFull: "QueueFull",
  /** The call waited in the concurrency queue longer than allowed. */
  QueueTimeout: "QueueTimeout",
  /** The call waited for an exclusive lock longer than allowed. */
  LockTimeout: "LockTimeout",
  /** A cluster-wide lock cannot be taken or kept because its store (Redis) is unreachable: refused, not run. */
  LockUnavailable: "LockUnavailable",
  /** Every attempt of a retried call failed. */
  RetriesExhausted: "RetriesExhausted",
  /** Every route of a fallback chain failed. */
  FallbackExhausted: "FallbackExhausted",
  /** The client cancelled the call or went away. */
  Cancelled: "Cancelled",
  /** No tool, prompt or resource by that name in the catalog. */
  ToolNotFound: "ToolNotFound",
  ResourceNotFound: "ResourceNotFound",
  PromptNotFound: "PromptNotFound",
  /** No task for this handle and caller (unknown, forged, expired, another caller's, or lost to a restart). */
  TaskNotFound: "TaskNotFound",
  /** The tool is held back until an operator approves its changed definition. */
  ToolHeld: "ToolHeld",
  /** The arguments do not match the tool's input schema. */
  InvalidArguments: "InvalidArguments",
  /** A malformed request (not JSON-RPC, wrong shape). */
  InvalidRequest: "InvalidRequest",
  /** A well-formed request whose params its method cannot take (a name that is not a string, a bad cursor). */
  InvalidParams: "InvalidParams",
  /** The method is not supported by the gateway or by the upstream. */
  MethodNotFound: "MethodNotFound",
  /** No or bad credentials. */
  Unauthorized: "Unauthorized",
  /** Credentials are fine, but this principal may not do this. */
  Forbidden: "Forbidden",
  /** A per-principal rate limit was hit. */
  RateLimited: "RateLimited",
  /** The configuration is invalid. */
  ConfigInvalid: "ConfigInvalid",
  /** The gateway is shutting down. */
  ShuttingDown: "ShuttingDown",
  /** A bug: something that should not happen. */
  Internal: "Internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What a failure means for retries, breakers and fallbacks. One class per failure, decided in one place. */
export type ErrorClass = "transient" | "permanent" | "client" | "overload";

export interface GatewayErrorOptions {
  upstream?: string;
  tool?: string;
  policy?: string;
  /** True when the request may have reached the upstream (a retry could run it twice). */
  reachedUpstream?: boolean;
  /** JSON-RPC code of an upstream error, kept for classification and telemetry. */
  rpcCode?: number;
  /** Extra machine-readable detail for the client (`data` of the JSON-RPC error). */
  data?: Record<string, unknown>;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly upstream: string | undefined;
  readonly tool: string | undefined;
  readonly policy: string | undefined;
  readonly reachedUpstream: boolean;
  readonly rpcCode: number | undefined;
  readonly data: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.code = code;
    this.upstream = options.upstream;
    this.tool = options.tool;
    this.policy = options.policy;
    this.reachedUpstream = options.reachedUpstream ?? false;
    this.rpcCode = options.rpcCode;
    this.data = options.data;
  }

  get errorClass(): ErrorClass {
    return classOf(this);
  }
}

/** JSON-RPC codes (spec + SDK-local ones) that matter for classification. */
export const RpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** SDK: connection closed. */
  ConnectionClosed: -32000,
  /** SDK: request timeout. */
  RequestTimeout: -32001,
  /** MCP: resource not found. */
  ResourceNotFound: -32002,
} as const;

const CLIENT_RPC_CODES = new Set<number>([
  RpcCode.ParseError,
  RpcCode.InvalidRequest,
  RpcCode.MethodNotFound,
  RpcCode.InvalidParams,
  RpcCode.ResourceNotFound,
]);

function classOf(e: GatewayError): ErrorClass {
  switch (e.code) {
    case ErrorCode.UpstreamUnavailable:
    case ErrorCode.UpstreamTimeout:
    case ErrorCode.ConnectionLost:
    case ErrorCode.CircuitOpen:
      return "transient";
    case ErrorCode.QueueFull:
    case ErrorCode.QueueTimeout:
    case ErrorCode.LockTimeout:
    case ErrorCode.LockUnavailable:
    case ErrorCode.RateLimited:
    case ErrorCode.ShuttingDown:
      return "overload";
    case ErrorCode.UpstreamError:
      if (e.rpcCode !== undefined && CLIENT_RPC_CODES.has(e.rpcCode)) return "client";
      return "transient";
    case ErrorCode.ToolNotFound:
    case ErrorCode.ResourceNotFound:
    case ErrorCode.PromptNotFound:
    case ErrorCode.TaskNotFound:
    case ErrorCode.InvalidArguments:
    case ErrorCode.InvalidRequest:
    case ErrorCode.InvalidParams:
    case ErrorCode.MethodNotFound:
    case ErrorCode.Unauthorized:
    case ErrorCode.Forbidden:
    case ErrorCode.Cancelled:
      return "client";
    case ErrorCode.RetriesExhausted:
    case ErrorCode.FallbackExhausted:
    case ErrorCode.ToolHeld:
    case ErrorCode.ConfigInvalid:
    case ErrorCode.Internal:
      return "permanent";
    default:
      return assertNever(e.code);
  }
}

/**
 * Map any thrown value to a GatewayError. SDK McpErrors carry a JSON-RPC `code`; -32000/-32001 are raised
 * locally by the SDK (connection closed, request timeout) and mean transport trouble, not an upstream answer.
 */
export function toGatewayError(err: unknown, context: GatewayErrorOptions = {}): GatewayError {
  if (err instanceof GatewayError) return err;
  const code =
    typeof (err as { code?: unknown })?.code === "number" ? (err as { code: number }).code : undefined;
  // The SDK's McpError prefixes "MCP error <code>: " to the peer's message; keep the peer's words.
  const raw = err instanceof Error ? err.message : String(err);
  const message = code === undefined ? raw : raw.replace(/^MCP error -?\d+: /, "");
  if (code === RpcCode.ConnectionClosed) {
    return new GatewayError(ErrorCode.ConnectionLost, `connection to upstream lost: ${message}`, {
      ...context,
      cause: err,
      rpcCode: code,
    });
  }
  if (code === RpcCode.RequestTimeout) {
    return new GatewayError(ErrorCode.UpstreamTimeout, message, { ...context, cause: err, rpcCode: code });
  }
  if (code !== undefined) {
    const data: unknown = (err as { data?: unknown }).data;
    return new GatewayError(ErrorCode.UpstreamError, message, {
      reachedUpstream: true,
      ...context,
      cause: err,
      rpcCode: code,
      data: isRecord(data) ? data : data === undefined ? context.data : { upstreamData: data },
    });
  }
  if ((err as { name?: string })?.name === "AbortError") {
    return new GatewayError(ErrorCode.Cancelled, "the call was cancelled", { ...context, cause: err });
  }
  const sysCode = (err as { code?: unknown })?.code;
  if (
    typeof sysCode === "string" &&
    /^(ECONN|EPIPE|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|UND_ERR)/.test(sysCode)
  ) {
    return new GatewayError(ErrorCode.UpstreamUnavailable, message, { ...context, cause: err });
  }
  return new GatewayError(ErrorCode.Internal, message, { ...context, cause: err });
}

/**
 * The same error with the context it lacks filled in (where it happened: upstream, tool, policy; extra
 * `data` beneath its own). Unchanged, and the same object, when there is nothing to add.
 */
export function withContext(e: GatewayError, context: GatewayErrorOptions): GatewayError {
  const adds =
    (context.upstream !== undefined && e.upstream === undefined) ||
    (context.tool !== undefined && e.tool === undefined) ||
    (context.policy !== undefined && e.policy === undefined) ||
    context.data !== undefined;
  if (!adds) return e;
  const copy = new GatewayError(e.code, e.message, {
    upstream: e.upstream ?? context.upstream,
    tool: e.tool ?? context.tool,
    policy: e.policy ?? context.policy,
    reachedUpstream: e.reachedUpstream,
    rpcCode: e.rpcCode,
    data: context.data === undefined ? e.data : { ...context.data, ...e.data },
    cause: e.cause,
  });
  copy.stack = e.stack;
  return copy;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Class of any failure: the single decision point for retry, breaker and fallback eligibility. */
export function classify(err: unknown): ErrorClass {
  return toGatewayError(err).errorClass;
}

/** The JSON-RPC error code each gateway code is sent with. Exhaustive: the compiler checks new codes. */
const WIRE_CODE: Record<ErrorCode, number> = {
  UpstreamUnavailable: -32003,
  UpstreamTimeout: -32004,
  UpstreamError: RpcCode.InternalError,
  ConnectionLost: -32003,
  CircuitOpen: -32005,
  QueueFull: -32006,
  QueueTimeout: -32006,
  LockTimeout: -32007,
  LockUnavailable: -32014,
  RetriesExhausted: -32008,
  FallbackExhausted: -32008,
  Cancelled: -32800,
  ToolNotFound: RpcCode.InvalidParams,
  ResourceNotFound: RpcCode.ResourceNotFound,
  PromptNotFound: RpcCode.InvalidParams,
  TaskNotFound: RpcCode.InvalidParams,
  ToolHeld: -32009,
  InvalidArguments: RpcCode.InvalidParams,
  InvalidRequest: RpcCode.InvalidRequest,
  InvalidParams: RpcCode.InvalidParams,
  MethodNotFound: RpcCode.MethodNotFound,
  Unauthorized: -32010,
  Forbidden: -32011,
  RateLimited: -32012,
  ConfigInvalid: RpcCode.InternalError,
  ShuttingDown: -32013,
  Internal: RpcCode.InternalError,
};

export interface WireError {
  code: number;
  message: string;
  data: Record<string, unknown>;
}

/** The JSON-RPC error object for a failure; `data.toolgate` carries the machine-readable cause. */
export function toWire(err: unknown): WireError {
  const e = toGatewayError(err);
  // An upstream's own JSON-RPC error passes through with its code and message, as if the client had called
  // the server directly; `data.toolgate` names the upstream.
  const passThrough = e.code === ErrorCode.UpstreamError && e.rpcCode !== undefined;
  return {
    code: passThrough ? (e.rpcCode as number) : WIRE_CODE[e.code],
    message: passThrough ? e.message : describe(e),
    data: {
      ...(e.data ?? {}),
      toolgate: {
        code: e.code,
        class: e.errorClass,
        ...(e.upstream ? { upstream: e.upstream } : {}),
        ...(e.tool ? { tool: e.tool } : {}),
        ...(e.policy ? { policy: e.policy } : {}),
      },
    },
  };
}

/** Human message: the code, where it happened, and the cause. */
export function describe(e: GatewayError): string {
  const where = [
    e.upstream && `upstream "${e.upstream}"`,
    e.tool && `tool "${e.tool}"`,
    e.policy && `policy ${e.policy}`,
  ]
    .filter(Boolean)
    .join(", ");
  return `${e.code}${where ? ` (${where})` : ""}: ${e.message}`;
}

export function assertNever(x: never): never {
  throw new Error(`unexpected value: ${String(x)}`);
}

/**
 * For `tools/call`: failures the model can act on (timeouts, open breakers, full queues, bad arguments)
 * return as an `isError` result it can read; requests that cannot be routed at all stay JSON-RPC errors,
 * and so does an upstream's own error answer (passed through as the upstream gave it).
 */
export function isProtocolError(err: unknown): boolean {
  const e = toGatewayError(err);
  switch (e.code) {
    case ErrorCode.ToolNotFound:
    case ErrorCode.TaskNotFound:
    case ErrorCode.InvalidRequest:
    case ErrorCode.InvalidParams:
    case ErrorCode.MethodNotFound:
    case ErrorCode.Unauthorized:
      return true;
    case ErrorCode.UpstreamError:
      // Only the upstream's own JSON-RPC error answer; an HTTP API's 5xx is a failure the model can read.
      return e.rpcCode !== undefined;
    default:
      return false;
  }
}

export interface ToolErrorResult {
  [key: string]: unknown;
  content: Array<{ type: "text"; text: string }>;
  isError: true;
  /** `data.toolgate` of the wire error, its message, and the rest of `data` (e.g. `attempts`). */
  _meta: { "toolgate/error": Record<string, unknown> & { message: string } };
}

export function toToolErrorResult(err: unknown): ToolErrorResult {
  const {
    message,
    data: { toolgate, ...detail },
  } = toWire(err);
  return {
    content: [{ type: "text", text: message }],
    isError: true,
    _meta: { "toolgate/error": { ...detail, ...(toolgate as object), message } },
  };
}
