/**
 * Structured logs, one record per line on stderr (stdout may carry MCP over stdio): JSON for machines, or
 * `text` (time, level, message, key=value) for a person at a terminal. Every line carries the active trace id
 * when there is one.
 */
import { trace } from "@opentelemetry/api";

export type LogLevel = "debug" | "info" | "warn" | "error";
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

type LogFields = Record<string, unknown>;
type LogSink = (line: string) => void;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
  child(fields: LogFields): Logger;
}

type LogFormat = "json" | "text";

export interface LoggerOptions {
  level?: LogLevel;
  sink?: LogSink;
  fields?: LogFields;
  /** `json` (default) or `text`. */
  format?: LogFormat;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const state = {
    level: RANK[options.level ?? "info"],
    sink: options.sink ?? ((line: string) => process.stderr.write(line)),
    render: options.format === "text" ? renderText : renderJson,
  };
  return make(state, options.fields ?? {});
}

type Render = (record: LogFields) => string;

function renderJson(record: LogFields): string {
  return JSON.stringify(record, errorReplacer);
}

/** `12:00:00.123 WARN  upstream down upstream=fs error="the process exited"`; multi-line values stay indented. */
function renderText(record: LogFields): string {
  const { time, level, msg, ...fields } = record;
  const clock = String(time).slice(11, 23);
  const pairs = Object.entries(fields).map(([k, v]) => {
    const text = typeof v === "string" ? v : JSON.stringify(v, errorReplacer);
    return `${k}=${typeof v === "string" && /[\s"=]/.test(v) ? JSON.stringify(text) : text}`;
  });
  const line = `${clock} ${String(level).toUpperCase().padEnd(5)} ${String(msg)}`;
  return [line, ...pairs].join(" ");
}

function make(state: { level: number; sink: LogSink; render: Render }, base: LogFields): Logger {
  const write = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[level] < state.level) return;
    const span = trace.getActiveSpan()?.spanContext();
    const record: LogFields = { time: new Date().toISOString(), level, msg, ...base, ...fields };
    if (span && span.traceId !== "00000000000000000000000000000000") record.trace_id = span.traceId;
    state.sink(`${state.render(record)}\n`);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    enabled: (level) => RANK[level] >= state.level,
    child: (fields) => make(state, { ...base, ...fields }),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, ...(value as object) };
  return value;
}

/** A logger that drops everything (tests, `toolgate check`). */
export const silentLogger: Logger = createLogger({ sink: () => {} });
