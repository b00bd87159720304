/**
 * A client that stops reading (stuck, or hostile) must not make the gateway hold what is meant for it without
 * bound. Both eras' SSE streams check before each notification or keep-alive: past MAX_UNSENT_BYTES still
 * unsent, the stream is cut instead (`destroy`), and its calls are cancelled as when the client disconnects.
 * Responses are always written: there are only as many as the client sent requests. A WebSocket peer gets
 * the same bound on its socket (websocket-transport.ts); the stdio face, which cannot cut its one stream
 * without ending the session, drops notifications instead (stdio-server-transport.ts).
 */

export const MAX_UNSENT_BYTES = 16 * 1024 * 1024;

/** Whether the reader of a stream fell so far behind that a notification must not be added to it. */
export function fellBehind(stream: { readonly writableLength: number }): boolean {
  return stream.writableLength > MAX_UNSENT_BYTES;
}

/** Why a stream was cut, for the log. */
export function cutReason(stream: string): string {
  return `the client stopped reading its ${stream} (over ${MAX_UNSENT_BYTES} bytes unsent): the stream was cut and its calls cancelled`;
}

/** Why the stdio face drops notifications, for the log. */
export function dropReason(): string {
  return `the client stopped reading toolgate's stdout (over ${MAX_UNSENT_BYTES} bytes unsent): notifications are dropped until it reads again`;
}
