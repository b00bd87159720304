/**
 * Messages refused at the edge, before dispatch (over a structural limit, a request id already in flight): a
 * refused request is counted like any failed request (its server span, so the call metrics), and the log gets
 * the first refusal and then every LOGGED_EVERY-th with the running count, so a client repeating its mistake
 * cannot flood it. One counter per 2025 session, one for the stateless 2026-07-28 face.
 */
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { GatewayError } from "../errors.ts";
import type { Logger } from "../telemetry/log.ts";
import type { ServerSpanInfo, Telemetry } from "../telemetry/telemetry.ts";

const LOGGED_EVERY = 100;

/** Where the refusal happened: log fields, and the span's session and transport. */
export interface RefusalScope {
  fields: Record<string, unknown>;
  span: Pick<ServerSpanInfo, "sessionId" | "transport">;
}

export class EdgeRefusals {
  #count = 0;
  readonly #log: Logger;
  readonly #telemetry: Pick<Telemetry, "serverSpan">;
  /** The log field carrying the running count (`refusedOnSession`, `refusedOnFace`). */
  readonly #countField: string;

  constructor(log: Logger, telemetry: Pick<Telemetry, "serverSpan">, countField: string) {
    this.#log = log;
    this.#telemetry = telemetry;
    this.#countField = countField;
  }

  record(message: JSONRPCMessage, error: GatewayError, scope: RefusalScope): void {
    const method = "method" in message ? message.method : "response";
    const count = ++this.#count;
    if (count === 1 || count % LOGGED_EVERY === 0) {
      this.#log.warn("message refused at the edge", {
        ...scope.fields,
        method,
        error: error.message,
        [this.#countField]: count,
      });
    }
    if (!("id" in message) || !("method" in message)) return;
    const span: ServerSpanInfo = { method, requestId: message.id, ...scope.span };
    const target = message.params?.name ?? message.params?.uri;
    if (typeof target === "string") span.target = target;
    void this.#telemetry.serverSpan(span, () => Promise.reject(error)).catch(() => {});
  }
}
