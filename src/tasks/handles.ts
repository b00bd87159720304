/**
 * Task handles: what a client holds instead of an upstream's task id. A handle is AES-256-GCM over who owns
 * the task (principal), where it runs (the gateway itself or an upstream and that upstream's task id) and
 * when it expires, so any replica with the key routes it without a shared map, nobody can forge or alter
 * one, and it reveals nothing. `open` answers undefined for every handle the caller may not use (garbled,
 * forged, expired, someone else's), so all of them get one and the same "not found".
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

export type TaskOrigin = "gateway" | "upstream";

export interface HandleClaims {
  origin: TaskOrigin;
  /** Upstream name; "" for a task the gateway runs. */
  upstream: string;
  /** The upstream's task id, or the gateway's own id. */
  taskId: string;
  principalId: string;
  /** Epoch ms after which the handle is refused. */
  expiresAt: number;
}

const PREFIX = "tg1.";
const AAD = Buffer.from("toolgate task handle v1");
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Far above any real handle; refuses garbage before any crypto work. */
const MAX_HANDLE_CHARS = 4096;

export class TaskHandles {
  readonly #key: Buffer;
  /** True when the key was generated for this process: handles do not survive a restart. */
  readonly ephemeral: boolean;

  /** `secret` absent: a random key for this process only. */
  constructor(secret?: string) {
    this.ephemeral = secret === undefined;
    this.#key = secret === undefined ? randomBytes(32) : createHash("sha256").update(secret).digest();
  }

  seal(claims: HandleClaims): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(AAD);
    const body = JSON.stringify([
      claims.origin === "gateway" ? "g" : "u",
      claims.upstream,
      claims.taskId,
      claims.principalId,
      claims.expiresAt,
    ]);
    const sealed = Buffer.concat([iv, cipher.update(body, "utf8"), cipher.final(), cipher.getAuthTag()]);
    return PREFIX + sealed.toString("base64url");
  }

  /** The claims of a handle that `principalId` may use at `now`, else undefined. */
  open(handle: unknown, principalId: string, now: number): HandleClaims | undefined {
    if (typeof handle !== "string" || !handle.startsWith(PREFIX) || handle.length > MAX_HANDLE_CHARS) return;
    const raw = Buffer.from(handle.slice(PREFIX.length), "base64url");
    if (raw.length <= IV_BYTES + TAG_BYTES) return;
    let body: unknown;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(AAD);
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]);
      body = JSON.parse(plain.toString("utf8"));
    } catch {
      return;
    }
    if (!Array.isArray(body) || body.length !== 5) return;
    const [origin, upstream, taskId, owner, expiresAt] = body as unknown[];
    if (
      (origin !== "g" && origin !== "u") ||
      typeof upstream !== "string" ||
      typeof taskId !== "string" ||
      typeof owner !== "string" ||
      typeof expiresAt !== "number"
    ) {
      return;
    }
    if (owner !== principalId || expiresAt <= now) return;
    return {
      origin: origin === "g" ? "gateway" : "upstream",
      upstream,
      taskId,
      principalId: owner,
      expiresAt,
    };
  }
}
