/**
 * The `console` trace exporter: one JSON log line per finished span on the gateway log (stderr). The
 * SDK's ConsoleSpanExporter writes to stdout, which carries MCP when the gateway runs over stdio.
 */
import { type ExportResult, ExportResultCode, hrTimeToMilliseconds } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { Logger } from "./log.ts";

export class LogSpanExporter implements SpanExporter {
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    for (const span of spans) {
      const { traceId, spanId } = span.spanContext();
      this.#logger.info("span", {
        span: span.name,
        trace_id: traceId,
        span_id: spanId,
        parent_span_id: span.parentSpanContext?.spanId,
        kind: span.kind,
        duration_ms: Math.round(hrTimeToMilliseconds(span.duration) * 1000) / 1000,
        status: span.status.code,
        attributes: span.attributes,
        ...(span.events.length > 0 && {
          events: span.events.map((e) => ({ name: e.name, ...e.attributes })),
        }),
      });
    }
    resultCallback({ code: ExportResultCode.SUCCESS });
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
