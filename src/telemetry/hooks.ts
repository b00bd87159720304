/**
 * Telemetry's adapters for the router and the upstreams: a CLIENT span around each upstream attempt and each
 * request forwarded as is, a metric (and a debug log line) per finished call, a client-operation metric per
 * discovery request. Their parameters are typed structurally, so telemetry imports nothing above it.
 */
import type { GatewayError } from "../errors.ts";
import type { Logger } from "./log.ts";
import type { CallOutcome } from "./stats.ts";
import type { CallRecordInput, NetworkTransport, Telemetry } from "./telemetry.ts";

/** `network.transport` of an upstream's config: `pipe` for stdio, `tcp` for the rest (or no config). */
export function upstreamTransport(config: { transport: { type: string } } | undefined): NetworkTransport {
  return config?.transport.type === "stdio" ? "pipe" : "tcp";
}

export interface CallTelemetryOptions {
  telemetry: Telemetry;
  log: Logger;
  /** The transport of the upstream named, looked up per call (a reload may change it). */
  transportOf: (upstream: string) => NetworkTransport;
}

/** A finished call as the router reports it (structurally router.ts's CallRecord). */
export interface FinishedCall {
  route: { name: string; upstream: string };
  principal: { id: string };
  durationMs: number;
  outcome: CallOutcome;
  error?: GatewayError;
  requestBytes?: number | undefined;
  responseBytes?: number;
}

type TraceMetaFn<T> = (meta: Record<string, string> | undefined) => Promise<T>;

/** The router's `aroundAttempt`, `aroundForward` and `onCallEnd`. */
export function callTelemetry({ telemetry, log, transportOf }: CallTelemetryOptions) {
  return {
    aroundAttempt: <T>(
      route: { upstream: string; upstreamTool: string },
      attempt: number,
      fn: TraceMetaFn<T>,
    ): Promise<T> =>
      telemetry.clientSpan(
        {
          method: "tools/call",
          target: route.upstreamTool,
          upstream: route.upstream,
          transport: transportOf(route.upstream),
          attempt,
        },
        fn,
      ),
    aroundForward: <T>(
      upstream: string,
      method: string,
      params: Record<string, unknown>,
      fn: TraceMetaFn<T>,
    ): Promise<T> => {
      const target = params.name ?? params.uri ?? params.ref;
      return telemetry.clientSpan(
        {
          method,
          target: typeof target === "string" ? target : "",
          upstream,
          transport: transportOf(upstream),
          attempt: 1,
        },
        fn,
      );
    },
    onCallEnd: (record: FinishedCall): void => {
      const call: CallRecordInput = {
        tool: record.route.name,
        upstream: record.route.upstream,
        outcome: record.outcome,
        durationMs: record.durationMs,
      };
      if (record.error) {
        call.errorCode = record.error.code;
        call.errorClass = record.error.errorClass;
      }
      if (record.requestBytes !== undefined) call.requestBytes = record.requestBytes;
      if (record.responseBytes !== undefined) call.responseBytes = record.responseBytes;
      telemetry.recordCall(call);
      if (log.enabled("debug")) {
        log.debug("call", {
          tool: record.route.name,
          upstream: record.route.upstream,
          principal: record.principal.id,
          outcome: record.outcome,
          ms: Math.round(record.durationMs * 10) / 10,
          ...(record.error && { error: record.error.code, message: record.error.message }),
        });
      }
    },
  };
}

/** The upstreams' `onDiscovery`: each discovery request (`tools/list`, … one per page) as a client operation. */
export function discoveryTelemetry(telemetry: Telemetry) {
  return (
    upstream: { name: string; config: { transport: { type: string } } },
    method: string,
    durationMs: number,
    error?: unknown,
  ): void =>
    telemetry.clientOperation(
      { method, upstream: upstream.name, transport: upstreamTransport(upstream.config) },
      durationMs,
      error,
    );
}
