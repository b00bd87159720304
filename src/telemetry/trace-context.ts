/**
 * W3C trace context (traceparent/tracestate/baggage) in MCP's `params._meta` or in HTTP headers. SDK 1.32
 * neither extracts nor injects it, so the gateway does both, with its own propagator (no global state).
 */
import { type Context, context, type TextMapGetter } from "@opentelemetry/api";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";

const propagator = new CompositePropagator({
  propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
});

const metaGetter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === "string" ? value : undefined;
  },
};

/** Request headers as the SDK hands them over (`extra.requestInfo.headers`, lower-case keys) or as Web Headers. */
export type HeadersLike = Headers | Readonly<Record<string, string | string[] | undefined>>;

const headersGetter: TextMapGetter<HeadersLike> = {
  keys: (carrier) => (carrier instanceof Headers ? [...carrier.keys()] : Object.keys(carrier)),
  get: (carrier, key) => (carrier instanceof Headers ? (carrier.get(key) ?? undefined) : carrier[key]),
};

/**
 * The context of a request's remote parent: `_meta` wins over HTTP headers; `undefined` when neither
 * carries a traceparent (the usual call: then nothing is parsed and no context is made).
 */
export function remoteParent(
  meta: Record<string, unknown> | undefined,
  headers: HeadersLike | undefined,
): Context | undefined {
  if (meta && typeof meta.traceparent === "string")
    return propagator.extract(context.active(), meta, metaGetter);
  if (headers && headersGetter.get(headers, "traceparent") !== undefined) {
    return propagator.extract(context.active(), headers, headersGetter);
  }
  return undefined;
}

/** The `_meta` entries carrying `ctx` to an upstream (empty when there is no valid span context). */
export function injectMeta(ctx: Context): Record<string, string> {
  const meta: Record<string, string> = {};
  propagator.inject(ctx, meta, {
    set: (carrier, key, value) => {
      carrier[key] = value;
    },
  });
  return meta;
}
