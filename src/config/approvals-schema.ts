/**
 * The `approvals` section: who may decide calls held by the `approval` tool policy when the calling client
 * cannot ask a person itself, and how long such a call waits.
 */
import { z } from "zod";
import { msAtLeast } from "./duration.ts";

export const ApprovalsSchema = z.strictObject({
  /**
   * Principals (API key ids or OAuth subjects) that may approve or deny held calls over HTTP
   * (`/approvals`, `toolgate approvals`). Empty: a call whose client cannot ask is refused at once.
   */
  operators: z.array(z.string().min(1)).default([]),
  /** How long a held call waits for an operator before it fails. */
  timeoutMs: msAtLeast().default(10 * 60_000),
});

export type ApprovalsConfig = z.output<typeof ApprovalsSchema>;
