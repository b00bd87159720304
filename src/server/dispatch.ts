/**
 * The era-neutral middle of every downstream face: one request (method, params, who asks, how to answer
 * back) handed to the router. The legacy session (server/session.ts) and the modern face
 * (server/eras/modern.ts) both call `dispatch`; what only one era has (ping, logging/setLevel and
 * resources/subscribe for 2025; server/discover and subscriptions/listen for 2026) stays in its face.
 */
import { ErrorCode, GatewayError } from "../errors.ts";
import type { Caller, CallToolContext, Principal, Router } from "../router/router.ts";

export interface NeutralRequest {
  method: string;
  params: Record<string, unknown>;
  caller: Caller;
  principal: Principal;
  requestId: string | number;
  signal: AbortSignal;
  /** Size of the request on the wire, when the transport knows it. */
  requestBytes?: number | undefined;
  /** Sends a notification related to this request (progress) on its response stream. */
  notify(method: string, params: Record<string, unknown>): Promise<void>;
  /** The start-up hold: resolves once the catalog is complete enough to list; rejects when `signal` aborts. */
  whenCatalogReady?: ((signal: AbortSignal) => Promise<void>) | undefined;
}

/** Requests that wait for the start-up hold: an early list must not look complete while upstreams connect. */
const HELD_AT_START = new Set(["tools/list", "prompts/list", "resources/list", "resources/templates/list"]);

const PAGE_SIZE = 500;

/** Methods `dispatch` serves, the same in both eras. */
export const NEUTRAL_METHODS: ReadonlySet<string> = new Set([
  "tools/list",
  "tools/call",
  "prompts/list",
  "prompts/get",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "completion/complete",
]);

/** Serves one request; never throws, every failure is a rejection. */
export function dispatch(router: Router, request: NeutralRequest): Promise<Record<string, unknown>> {
  try {
    const { params } = request;
    const unknownTool =
      request.method === "tools/call" && typeof params.name === "string" && !router.knowsTool(params.name);
    if (request.whenCatalogReady && (HELD_AT_START.has(request.method) || unknownTool)) {
      return request.whenCatalogReady(request.signal).then(() => serve(router, request));
    }
    return serve(router, request);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The method's answer; no async layer of its own, as a `tools/call` without progress is the hot path. */
function serve(router: Router, request: NeutralRequest): Promise<Record<string, unknown>> {
  const { params } = request;
  const ctx = {
    caller: request.caller,
    principal: request.principal,
    requestId: request.requestId,
    signal: request.signal,
    meta: params._meta as Record<string, unknown> | undefined,
  };
  switch (request.method) {
    case "tools/list":
      return Promise.resolve(page(router.listTools(request.principal), params.cursor, "tools"));
    case "tools/call": {
      const name = params.name;
      if (typeof name !== "string") throw invalidParams("tools/call needs params.name (a string)");
      const args = params.arguments ?? {};
      if (typeof args !== "object" || Array.isArray(args))
        throw invalidParams("tools/call params.arguments must be an object");
      const progressToken = ctx.meta?.progressToken;
      if (progressToken === undefined) {
        return router.callTool(name, args as Record<string, unknown>, {
          ...ctx,
          requestBytes: request.requestBytes,
          onProgress: undefined,
        });
      }
      return callWithProgress(router, request, name, args as Record<string, unknown>, ctx, progressToken);
    }
    case "prompts/list":
      return Promise.resolve(page(router.listPrompts(), params.cursor, "prompts"));
    case "prompts/get":
      return router.getPrompt(params, ctx);
    case "resources/list":
      return Promise.resolve(page(router.listResources(), params.cursor, "resources"));
    case "resources/templates/list":
      return Promise.resolve(page(router.listResourceTemplates(), params.cursor, "resourceTemplates"));
    case "resources/read":
      return router.readResource(params, ctx);
    case "completion/complete":
      return router.complete(params, ctx);
    default:
      throw new GatewayError(
        ErrorCode.MethodNotFound,
        `toolgate does not support method "${request.method}"`,
      );
  }
}

/** A `tools/call` whose client asked for progress: updates go out in order, and before the result. */
async function callWithProgress(
  router: Router,
  request: NeutralRequest,
  name: string,
  args: Record<string, unknown>,
  ctx: Omit<CallToolContext, "requestBytes" | "onProgress">,
  progressToken: unknown,
): Promise<Record<string, unknown>> {
  // Progress is sent asynchronously; the result must not overtake the last update. The SDK client
  // drops a progress update that arrives in the same read as its response: a macrotask between
  // them keeps them in separate writes.
  let progressSent: Promise<void> | undefined;
  const result = await router.callTool(name, args, {
    ...ctx,
    requestBytes: request.requestBytes,
    onProgress: (p) => {
      progressSent = (progressSent ?? Promise.resolve())
        .then(() => request.notify("notifications/progress", { ...p, progressToken }))
        .catch(() => {});
    },
  });
  if (progressSent) {
    await progressSent;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return result;
}

export function invalidParams(message: string): GatewayError {
  return new GatewayError(ErrorCode.InvalidParams, message);
}

/** Opaque cursors over a list that the gateway assembles: base64 of the offset. */
function page<T>(items: readonly T[], cursor: unknown, key: string): Record<string, unknown> {
  let start = 0;
  if (cursor !== undefined) {
    const parsed =
      typeof cursor === "string" ? Number(Buffer.from(cursor, "base64url").toString()) : Number.NaN;
    if (!Number.isInteger(parsed) || parsed < 0)
      throw invalidParams(`invalid cursor ${JSON.stringify(cursor)}`);
    start = parsed;
  }
  const end = start + PAGE_SIZE;
  const result: Record<string, unknown> = { [key]: items.slice(start, end) };
  if (end < items.length) result.nextCursor = Buffer.from(String(end)).toString("base64url");
  return result;
}
