/**
 * A benchmark process must stop by itself even when its parent dies without cleaning up (SIGKILL,
 * crash): once re-parented, it exits.
 */
export function exitWhenOrphaned(intervalMs = 1_000): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, intervalMs).unref();
}
