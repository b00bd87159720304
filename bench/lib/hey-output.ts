/** Reads the summary `hey` prints after a run (github.com/rakyll/hey v0.1.4). */

export interface HeySummary {
  /** Answers with status 200. */
  calls: number;
  callsPerSec: number;
  p50Ms: number;
}

/**
 * The window's figures, or an error (`who`: what failed): any status but 200, or a transport error, is a
 * failed call, and no figure comes from such a window. Statuses are read only from their own section: the
 * latency histogram above it prints its counts in the same `[312]` form.
 */
export function readHey(stdout: string, who = "hey"): HeySummary {
  const statuses = stdout.split("Status code distribution:")[1]?.split("Error distribution:")[0] ?? "";
  const calls = Number(/\[200\]\s+(\d+)/.exec(statuses)?.[1] ?? 0);
  const failed = /\[(?!200\])\d{3}\]\s+\d+/.exec(statuses)?.[0];
  const errors = stdout.split("Error distribution:")[1]?.trim();
  if (calls === 0 || failed || errors) {
    const why = errors
      ? `errors: ${errors.split("\n")[0]}`
      : failed
        ? `status ${failed}`
        : "no answer with 200";
    throw new Error(`${who}: ${why}`);
  }
  return {
    calls,
    callsPerSec: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]),
    p50Ms: Number(/50% in ([\d.]+) secs/.exec(stdout)?.[1]) * 1000,
  };
}
