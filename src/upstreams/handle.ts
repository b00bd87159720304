/**
 * What the registry, catalog, router and status page use of an upstream. MCP servers (upstream.ts) and
 * HTTP APIs (openapi/adapter.ts) both provide it, so every upstream gets the same catalog and policies.
 */
import type { EventEmitter } from "node:events";
import type {
  Prompt,
  Resource,
  ResourceTemplate,
  ServerCapabilities,
  Tool,
} from "@modelcontextprotocol/sdk/types.js";
import type { UpstreamConfig } from "../config/load.ts";
import type { UpstreamEvents, UpstreamRequestOptions, UpstreamState, UpstreamStatus } from "./upstream.ts";

export interface UpstreamHandle extends EventEmitter<UpstreamEvents> {
  readonly name: string;
  readonly config: UpstreamConfig;
  /** Swap settings that keep the connection (same transport). */
  reconfigure(config: UpstreamConfig): void;
  readonly state: UpstreamState;
  readonly tools: Tool[];
  readonly resources: Resource[];
  readonly resourceTemplates: ResourceTemplate[];
  readonly prompts: Prompt[];
  readonly capabilities: ServerCapabilities | undefined;
  readonly instructions: string | undefined;
  /** Compact mode of an OpenAPI upstream: the invoke meta-tool and the operations behind it. */
  readonly operations?: { invokeTool: string; tools: readonly Tool[] } | undefined;
  status(): UpstreamStatus;
  /** Begin in the background; never throws. */
  start(): void;
  whenReady(timeoutMs: number): Promise<boolean>;
  /** An MCP request (`tools/call`, …); every failure is a GatewayError. */
  request(
    method: string,
    params: Record<string, unknown> | undefined,
    options?: UpstreamRequestOptions,
  ): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}
