/**
 * Durations in the config. Each becomes a Node timer somewhere, and Node fires a timer longer than 2^31 − 1 ms
 * after 1 ms (with only a warning), so a longer value is refused here, at load, with its path.
 */
import { z } from "zod";

/** The longest delay `setTimeout` takes (about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const TOO_LONG = `at most ${MAX_TIMER_MS} ms (about 24.8 days), the longest timer Node can set`;

/** Milliseconds, 0 included (for most settings 0 means "none"). */
export const ms = z.number().int().nonnegative().max(MAX_TIMER_MS, TOO_LONG);

/** Milliseconds, at least `least` (1 by default). */
export const msAtLeast = (least = 1) => ms.min(least);
