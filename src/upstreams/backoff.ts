/**
 * Reconnect delays: exponential from `initialDelayMs`, capped at `maxDelayMs`, with "equal jitter"
 * (half fixed, half random) so many upstreams that drop together do not reconnect in lockstep.
 */
export interface BackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
}

/** Delay before retry number `attempt` (0 for the first retry). `random` is injectable for tests. */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(0, attempt), 30);
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
