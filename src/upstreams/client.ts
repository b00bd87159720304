/**
 * One live connection to an upstream, whatever protocol era it speaks. `Upstream` owns the lifecycle
 * (reconnects, discovery, state); an `UpstreamClient` only carries requests both ways. Two implementations:
 * legacy-client.ts (2025-11-25, sessions and `initialize`, on toolgate's own JSON-RPC engine) and
 * modern-client.ts (2026-07-28, SDK v2, `server/discover`, per-request `_meta`, input-required rounds,
 * `subscriptions/listen`).
 */
import type { Implementation, ServerCapabilities, Tool } from "@modelcontextprotocol/sdk/types.js";

export type ProtocolEra = "2025-11-25" | "2026-07-28";
/** Config: `auto` probes with `server/discover` and falls back to `initialize`. */
export type ProtocolSetting = "auto" | ProtocolEra;

export interface ServerMessage {
  method: string;
  params?: Record<string, unknown>;
}

export type ListKind = "tools" | "resources" | "prompts";

/** What the connection reports to its owner. */
export interface ClientEvents {
  /** A server→client request (sampling, elicitation, roots): in the 2026 era, one input-required round. */
  onServerRequest(request: ServerMessage, signal: AbortSignal): Promise<Record<string, unknown>>;
  /** Logging, resources/updated and other notifications (not list changes, not progress). */
  onNotification(notification: ServerMessage): void;
  onListChanged(kind: ListKind): void;
  /** The connection closed after it was established. */
  onClose(): void;
  onError(error: Error): void;
}

export interface ClientRequestOptions {
  signal?: AbortSignal;
  onprogress?: (progress: { progress: number; total?: number; message?: string }) => void;
  timeout: number;
  /** For `tools/call`: the upstream's definition of the tool (2026: `Mcp-Param-*` headers come from it). */
  tool?: Tool;
}

export interface UpstreamClient {
  readonly era: ProtocolEra;
  readonly protocolVersion: string | undefined;
  readonly serverInfo: Implementation | undefined;
  readonly capabilities: ServerCapabilities | undefined;
  readonly instructions: string | undefined;
  /** Forward a request; the raw result comes back (2026: `resultType` consumed, input rounds fulfilled). */
  request(
    method: string,
    params: Record<string, unknown> | undefined,
    options: ClientRequestOptions,
  ): Promise<Record<string, unknown>>;
  notify(method: string, params?: Record<string, unknown>): Promise<void>;
  /** Every page of `tools/list`, when the era has rules of its own for which tools a client may use. */
  listTools?(timeout: number): Promise<unknown[]>;
  /** Requests sent and not yet answered. */
  pending(): number;
  /** `reason`, when the connection is dropped for one, is what the calls still in flight fail with. */
  close(reason?: string): Promise<void>;
}

/**
 * A 2026 upstream's input-required round that the client could not answer (no client call in flight, or its
 * client lacks the capability, declined with an error, or went away). The call fails with this cause.
 */
export class InputRoundFailed extends Error {
  readonly method: string;

  constructor(method: string, cause: unknown) {
    const message = cause instanceof Error ? cause.message : String(cause);
    super(`${method} (an input-required round) could not be answered: ${message}`, { cause });
    this.method = method;
  }
}

/** Declared so upstreams may use them; the gateway answers through `onServerRequest`. */
export const CLIENT_CAPABILITIES = {
  sampling: {},
  elicitation: { form: {} },
  roots: { listChanged: true },
};
