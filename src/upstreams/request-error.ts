/**
 * What a failed upstream request means: the GatewayError the caller sees, and whether the connection it
 * travelled on is broken (so the upstream should reconnect). One place decides, for every transport.
 */

import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from "@modelcontextprotocol/client";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { SseError } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { ErrorCode, GatewayError, RpcCode, toGatewayError } from "../errors.ts";
import { InputRoundFailed } from "./client.ts";
import { MalformedAnswerError } from "./message-shape.ts";

export interface RequestFailure {
  error: GatewayError;
  /** The transport is unusable: drop it and reconnect. */
  connectionBroken: boolean;
}

/**
 * The message itself could not be turned into bytes (too deeply nested, too large, not JSON): nothing was
 * written, the connection is fine, and sending it again would fail the same way. Raised by the transport
 * wrapper in transports.ts.
 */
export class UnsendableMessageError extends Error {
  constructor(cause: unknown) {
    super(`the message cannot be serialized: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = "UnsendableMessageError";
  }
}

/** Error codes of a refused or unreachable peer: the request never left this process. */
const NOT_SENT = /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)$/;

export function requestFailure(err: unknown, upstream: string, signal?: AbortSignal): RequestFailure {
  if (signal?.aborted) {
    // The SDK already sent notifications/cancelled; the caller's reason (e.g. a timeout policy's
    // GatewayError) is the truth, not the SDK's generic "request timed out" wrapper.
    const reason: unknown = signal.reason;
    const error =
      reason instanceof GatewayError
        ? reason
        : new GatewayError(ErrorCode.Cancelled, `the call to upstream "${upstream}" was cancelled`, {
            upstream,
            reachedUpstream: true,
            cause: reason,
          });
    return { error, connectionBroken: false };
  }
  if (err instanceof UnsendableMessageError) {
    // The call's own fault, decided before any byte was written: not retried, not counted by a breaker.
    return {
      error: new GatewayError(
        ErrorCode.InvalidArguments,
        `the request was not sent to upstream "${upstream}": ${err.message}; the connection is unaffected`,
        { upstream, reachedUpstream: false, cause: err },
      ),
      connectionBroken: false,
    };
  }
  if (err instanceof MalformedAnswerError || err instanceof InputRoundFailed) {
    // This request's own failure, the connection still carries the others: an answer that broke the protocol, or
    // an input round the client could not answer. A tool-level failure the model can act on (an isError result),
    // as the SDK's own legacy shim does for the latter.
    return {
      error: new GatewayError(ErrorCode.UpstreamError, `upstream "${upstream}": ${err.message}`, {
        upstream,
        reachedUpstream: true,
        cause: err,
      }),
      connectionBroken: false,
    };
  }
  if (err instanceof McpError || err instanceof ProtocolError) {
    // A JSON-RPC error from the upstream, or the SDK's local -32000 (connection closed) / -32001 (timeout).
    return { error: toGatewayError(err, { upstream, reachedUpstream: true }), connectionBroken: false };
  }
  if (err instanceof SdkError && !(err instanceof SdkHttpError)) return sdkFailure(err, upstream);
  if (err instanceof StreamableHTTPError || err instanceof SseError || err instanceof SdkHttpError) {
    const status =
      err instanceof SdkHttpError ? err.status : typeof err.code === "number" ? err.code : undefined;
    if (status === 404) {
      // The server forgot our session (it restarted): nothing ran; a fresh session is needed.
      return {
        error: new GatewayError(
          ErrorCode.UpstreamUnavailable,
          `upstream "${upstream}" no longer knows the session (HTTP 404); reconnecting`,
          { upstream, reachedUpstream: false, cause: err },
        ),
        connectionBroken: true,
      };
    }
    return {
      error: new GatewayError(ErrorCode.UpstreamError, `upstream "${upstream}" answered ${err.message}`, {
        upstream,
        reachedUpstream: true,
        cause: err,
      }),
      connectionBroken: false,
    };
  }
  if (err instanceof UnauthorizedError) {
    // The upstream refused toolgate's credentials and no refresh could fix it: nothing ran; reconnecting
    // shows the upstream as needing authorization (with the command that grants it).
    return {
      error: new GatewayError(
        ErrorCode.UpstreamUnavailable,
        `upstream "${upstream}" refused toolgate's credentials (${err.message}); it needs authorization again`,
        { upstream, reachedUpstream: false, cause: err },
      ),
      connectionBroken: true,
    };
  }
  // Anything else failed in the transport itself: a dead socket, a refused connection, a closed pipe.
  const code = systemError(err)?.code;
  // "Not connected": the SDK refused to send because the transport had just closed.
  const notSent =
    (code !== undefined && NOT_SENT.test(code)) || (err instanceof Error && err.message === "Not connected");
  return {
    error: new GatewayError(
      notSent ? ErrorCode.UpstreamUnavailable : ErrorCode.ConnectionLost,
      `transport to upstream "${upstream}" failed: ${describeFailure(err)}`,
      { upstream, reachedUpstream: !notSent, cause: err },
    ),
    // An HTTP exchange that reached the server and then broke (a reset, a hang-up) was this request's own
    // socket: the session and the other requests' sockets are fine. Were the server gone, its event stream
    // breaks and the next request is refused, and either marks it down.
    connectionBroken: notSent || !isFetchFailure(err),
  };
}

/** An error the upstream answered in JSON-RPC (not the SDKs' local timeout or closed connection). */
export function isJsonRpcAnswer(err: unknown): boolean {
  return (
    (err instanceof McpError || err instanceof ProtocolError) &&
    err.code !== RpcCode.RequestTimeout &&
    err.code !== RpcCode.ConnectionClosed
  );
}

/** A request that got no answer in time, by either SDK's local timeout. */
export function isLocalTimeout(err: unknown): boolean {
  return (
    (err instanceof McpError && err.code === RpcCode.RequestTimeout) ||
    (err instanceof SdkError && err.code === SdkErrorCode.RequestTimeout)
  );
}

/** A local failure of the v2 SDK (2026-era upstreams), by its string code. */
function sdkFailure(err: SdkError, upstream: string): RequestFailure {
  const context = { upstream, cause: err };
  switch (err.code) {
    case SdkErrorCode.RequestTimeout:
      return {
        error: new GatewayError(ErrorCode.UpstreamTimeout, `upstream "${upstream}": ${err.message}`, {
          ...context,
          reachedUpstream: true,
        }),
        connectionBroken: false,
      };
    case SdkErrorCode.NotConnected:
    case SdkErrorCode.ConnectionClosed:
    case SdkErrorCode.SendFailed: {
      const notSent = err.code === SdkErrorCode.NotConnected;
      return {
        error: new GatewayError(
          notSent ? ErrorCode.UpstreamUnavailable : ErrorCode.ConnectionLost,
          `transport to upstream "${upstream}" failed: ${describeFailure(err)}`,
          { ...context, reachedUpstream: !notSent },
        ),
        connectionBroken: true,
      };
    }
    default:
      // The upstream's answer broke the protocol (a malformed result, too many input rounds, …).
      return {
        error: new GatewayError(ErrorCode.UpstreamError, `upstream "${upstream}": ${err.message}`, {
          ...context,
          reachedUpstream: true,
        }),
        connectionBroken: false,
      };
  }
}

/** A one-line cause for logs and `lastError`: the message plus the system error code hidden in `cause`. */
export function describeFailure(err: unknown): string {
  if (err instanceof GatewayError) return err.message;
  const message = err instanceof Error ? err.message : String(err);
  const wrongPath = wrongPathHint(err, message);
  if (wrongPath) return `${message}: ${wrongPath}`;
  const system = systemError(err);
  if (!system) {
    // A failure of toolgate's own fetch that no socket error explains (an answer over its size bound).
    const cause = (err as { cause?: unknown }).cause;
    return isFetchFailure(err) && cause instanceof Error ? `${message}: ${cause.message}` : message;
  }
  const { code, syscall } = system;
  const hint = syscall?.startsWith("spawn") ? SPAWN_HINTS[code] : NETWORK_HINTS[code];
  const said = message.includes(code) ? message : `${message} (${code})`;
  return hint ? `${said}: ${hint}` : said;
}

/**
 * A url that reaches a web server but no MCP endpoint: a 404/405 to the handshake, or a web page for an answer.
 * The likeliest cause is the path; or the transport, when a legacy SSE GET meets a Streamable HTTP endpoint.
 */
function wrongPathHint(err: unknown, message: string): string | undefined {
  if (err instanceof SseError && (err.code === 400 || err.code === 405)) {
    // A legacy SSE client's GET opens no session at a Streamable HTTP endpoint: it answers 400 or 405.
    return 'a Streamable HTTP server answers a GET without a session like this: if the url serves one, set "type": "http"';
  }
  const status =
    err instanceof SdkHttpError
      ? err.status
      : err instanceof StreamableHTTPError || err instanceof SseError
        ? err.code
        : undefined;
  const page = /Unexpected content type: text\/html/.test(message);
  if (status !== 404 && status !== 405 && !page) return undefined;
  return `${page ? "the url serves a web page" : "nothing serves MCP at that url"}: check its path (a Streamable HTTP server is often at …/mcp; a legacy SSE server at …/sse, with "type": "sse")`;
}

/** What the network errors a new user meets first mean for an upstream, and what to check. */
const NETWORK_HINTS: Record<string, string> = {
  ECONNREFUSED: "nothing accepts connections at that address; is the server running, and is the url right?",
  ENOTFOUND: "the url's host name does not resolve",
  EAI_AGAIN: "the url's host name could not be resolved now (DNS)",
  ECONNRESET: "the server closed the connection",
  EHOSTUNREACH: "the url's host is unreachable from here",
  DEPTH_ZERO_SELF_SIGNED_CERT:
    "the server's TLS certificate is self-signed; trust it with NODE_EXTRA_CA_CERTS",
  SELF_SIGNED_CERT_IN_CHAIN:
    "the server's TLS certificate chain is not trusted; trust its CA with NODE_EXTRA_CA_CERTS",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    "the server's TLS certificate is not trusted; trust its CA with NODE_EXTRA_CA_CERTS",
  CERT_HAS_EXPIRED: "the server's TLS certificate has expired",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server's TLS certificate does not name the url's host",
};

/** The same for starting a stdio server's command. */
const SPAWN_HINTS: Record<string, string> = {
  ENOENT:
    "command not found: put it on PATH, or give its full path (or one starting ./, relative to the config file)",
  EACCES: "the command is not executable by toolgate's user",
};

/**
 * Whether a connection failed because the server wants authorization: a 401 from any of the transports
 * (the v1 SDK's and toolgate's HTTP errors and the SSE error carry the status as `code`, the v2 SDK its own
 * code), or the SDK's UnauthorizedError.
 */
export function asksForAuthorization(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 401 || code === SdkErrorCode.ClientHttpAuthentication || err instanceof UnauthorizedError;
}

/** How fetch (and toolgate's HTTP client, which fails as fetch does) reports an exchange that failed. */
function isFetchFailure(err: unknown): boolean {
  return err instanceof TypeError && err.message === "fetch failed";
}

/** `fetch` wraps the socket error in `cause`; Node's own errors carry `code` directly. */
function systemError(err: unknown): { code: string; syscall?: string } | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, syscall } = e as { code?: unknown; syscall?: unknown };
    if (typeof code === "string") return { code, ...(typeof syscall === "string" && { syscall }) };
  }
  return undefined;
}
