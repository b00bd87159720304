/**
 * OTLP exporters by protocol (OTEL_EXPORTER_OTLP_[SIGNAL_]PROTOCOL): gRPC, HTTP with protobuf (the
 * spec's default) or HTTP with JSON. Each exporter reads the rest of its standard variables itself
 * (headers, timeout, compression, certificates).
 */
import { OTLPMetricExporter as GrpcMetricExporter } from "@opentelemetry/exporter-metrics-otlp-grpc";
import { OTLPMetricExporter as JsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as ProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPTraceExporter as GrpcTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as JsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import type { PushMetricExporter } from "@opentelemetry/sdk-metrics";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { OtlpProtocol } from "./options.ts";

export function otlpTraceExporter(protocol: OtlpProtocol, url: string): SpanExporter {
  switch (protocol) {
    case "grpc":
      return new GrpcTraceExporter({ url });
    case "http/json":
      return new JsonTraceExporter({ url });
    case "http/protobuf":
      return new ProtoTraceExporter({ url });
  }
}

export function otlpMetricExporter(protocol: OtlpProtocol, url: string): PushMetricExporter {
  switch (protocol) {
    case "grpc":
      return new GrpcMetricExporter({ url });
    case "http/json":
      return new JsonMetricExporter({ url });
    case "http/protobuf":
      return new ProtoMetricExporter({ url });
  }
}
