# domcast in a container: one image for API nodes (`serve`) and workers (`worker`); docs/CLUSTER.md.
#   docker build -t domcast .
#   docker compose up        (compose.yaml: two API nodes, a worker, Redis and PostgreSQL)

# Build: the server bundle and the viewer's assets (dist/), and better-sqlite3's native addon.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN node scripts/build.mjs

# Run: Debian with Chromium, the production dependencies only, as a user without privileges.
FROM node:20-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends chromium fonts-liberation ca-certificates tini \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY --from=build /app/node_modules/better-sqlite3/build ./node_modules/better-sqlite3/build
COPY --from=build /app/dist ./dist
COPY workflows ./workflows
RUN mkdir -p /data && chown node:node /data
USER node
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    CHROMIUM_PATH=/usr/bin/chromium \
    DOMCAST_DATA_DIR=/data \
    WORKFLOWS_DIR=/app/workflows \
    LOG_FORMAT=json
VOLUME /data
EXPOSE 3000
# A worker serves no HTTP: compose.yaml gives workers `health --worker` (its heartbeat in Redis).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["node", "dist/cli.js", "health"]
ENTRYPOINT ["tini", "--", "node", "dist/cli.js"]
CMD ["serve"]
