/**
 * Public names. Every client and LLM API accepts `^[A-Za-z0-9_-]{1,64}$`, so public names stay inside it:
 * `<prefix><separator><name>`, other characters become `_`, and a name longer than 64 keeps its first 55
 * characters plus `_` and 8 hex digits of the SHA-256 of the full name (deterministic and collision-resistant).
 */
import { createHash } from "node:crypto";

export const MAX_NAME_LENGTH = 64;
const HASH_LENGTH = 8;

export function publicName(prefix: string, separator: string, name: string): string {
  const full = prefix ? `${prefix}${separator}${name}` : name;
  return fitName(full);
}

export function fitName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_-]/g, "_") || "_";
  if (safe.length <= MAX_NAME_LENGTH) return safe;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, HASH_LENGTH);
  return `${safe.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1)}_${hash}`;
}
