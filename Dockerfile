# syntax=docker/dockerfile:1
# Multi-stage: compile TypeScript with the dev toolchain, ship only dist/ and production dependencies.
# Pin the base by digest in production: --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:<digest>
ARG NODE_IMAGE=node:24-bookworm-slim
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts
# The example upstream, installed at build time: nothing is fetched with npx when the container starts.
RUN npm install --no-audit --no-fund --ignore-scripts --prefix /opt/upstreams \
      @modelcontextprotocol/server-everything@2026.8.31

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
# The port the health check probes: change it together with gateway.listen.port (or --http).
ENV TOOLGATE_PORT=8080
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /opt/upstreams /opt/upstreams
COPY package.json ./
COPY bin ./bin
COPY config ./config
# Numeric user (the image's `node`): Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
# Ready means the catalog is served (every upstream settled or the startup budget passed), not just "up".
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.TOOLGATE_PORT}/readyz`).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/toolgate.js"]
# Listening beyond loopback requires authentication: set TOOLGATE_API_KEY (32+ random characters).
CMD ["serve", "--config", "config/toolgate.docker.json", "--host", "0.0.0.0"]
