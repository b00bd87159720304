/**
 * Task webhooks: a task's terminal status POSTed to the URL its tool's policy names (`task.webhook`), never
 * to a URL a client supplies. Three attempts a few seconds apart; a receiver that still fails is logged.
 */
import { createHmac } from "node:crypto";
import type { Logger } from "../telemetry/log.ts";

export interface TaskWebhookBody {
  event: "task.ended";
  taskId: string;
  status: string;
  statusMessage?: string;
  tool: string;
  origin: "gateway" | "upstream";
  principal: string;
  createdAt: string;
  lastUpdatedAt: string;
}

const ATTEMPTS = 3;
const TIMEOUT_MS = 10_000;

export async function postTaskWebhook(
  url: string,
  body: TaskWebhookBody,
  options: { secret?: string | undefined; log: Logger; delayMs?: number },
): Promise<boolean> {
  const json = JSON.stringify(body);
  const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "toolgate" };
  if (options.secret) {
    headers["x-toolgate-signature"] =
      `sha256=${createHmac("sha256", options.secret).update(json).digest("hex")}`;
  }
  let last = "";
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers,
        body: json,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      await response.body?.cancel();
      if (response.ok) return true;
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (attempt < ATTEMPTS) await new Promise((r) => setTimeout(r, (options.delayMs ?? 1_000) * attempt));
  }
  // The origin only: a webhook URL may carry a token in its path or query.
  options.log.warn("task webhook not delivered", {
    webhook: new URL(url).origin,
    tool: body.tool,
    status: body.status,
    error: last,
  });
  return false;
}
