/**
 * Where an upstream connection's server→client requests and notifications go. A message tied to one of the
 * upstream's tasks goes to the session that created the task, under its handle (never the upstream's task
 * id); the rest goes to the router's reverse path, to the calls in flight under the connection's routing key.
 */

import type { Router } from "../router/router.ts";
import type { Logger } from "../telemetry/log.ts";
import type { UpstreamOptions } from "../upstreams/upstream.ts";
import { RELATED_TASK } from "./model.ts";
import type { TaskService } from "./tasks.ts";

/** Read when a message arrives, so the gateway may pass itself before its router and tasks exist. */
export interface UpstreamRoutingDeps {
  readonly router: Router;
  readonly tasks: TaskService;
  readonly log: Logger;
}

/**
 * The `onServerRequest` and `onNotification` of one upstream connection; `routingKey` is a per-principal
 * connection's own key (default: the upstream's name).
 */
export function upstreamRouting(
  deps: UpstreamRoutingDeps,
  routingKey: string | undefined,
): Required<Pick<UpstreamOptions, "onServerRequest" | "onNotification">> {
  return {
    onServerRequest: async (upstream, request, extra) => {
      const target = relatesToTask(request.method, request.params)
        ? await deps.tasks.relatedTarget(upstream.name, request.method, request.params)
        : undefined;
      if (target) {
        return target.caller.request(request.method, target.params, {
          signal: extra.signal,
          ...(target.relatedRequestId !== undefined && { relatedRequestId: target.relatedRequestId }),
        });
      }
      return deps.router.serverRequest(
        routingKey ?? upstream.name,
        request.method,
        withoutRelatedTask(request.params),
        extra.signal,
      );
    },
    onNotification: (upstream, n) => {
      if (!relatesToTask(n.method, n.params)) {
        deps.router.routeNotification(routingKey ?? upstream.name, n.method, n.params);
        return;
      }
      // Tied to a task: to the session that created it, under its handle (never the upstream's task id).
      void deps.tasks.relatedTarget(upstream.name, n.method, n.params).then((target) => {
        if (target) {
          target.caller
            .notify(n.method, target.params, target.relatedRequestId)
            .catch((err) => deps.log.debug("task notification not delivered", { err }));
        } else if (n.method !== "notifications/tasks/status") {
          deps.router.routeNotification(routingKey ?? upstream.name, n.method, withoutRelatedTask(n.params));
        }
      });
    },
  };
}

/** A message an upstream tied to one of its tasks. */
function relatesToTask(method: string, params: Record<string, unknown> | undefined): boolean {
  if (method === "notifications/tasks/status") return true;
  const meta = params?._meta as Record<string, unknown> | undefined;
  return meta?.[RELATED_TASK] !== undefined;
}

/** An upstream's task id never reaches a client that holds no handle for it. */
function withoutRelatedTask(
  params: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  const meta = params?._meta as Record<string, unknown> | undefined;
  if (!meta) return params;
  const { [RELATED_TASK]: _, ...rest } = meta;
  return { ...params, _meta: rest };
}
