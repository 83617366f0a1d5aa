# One image for every service; docker-compose.yml picks the entry point.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts
COPY tsconfig.json ./
COPY api ./api
COPY platform ./platform
COPY store ./store
COPY protocol ./protocol
COPY schemas ./schemas
COPY auth ./auth
COPY collector ./collector
COPY dispatcher ./dispatcher
COPY admin ./admin
COPY pusher ./pusher
COPY cli ./cli
# Production mode, explicitly (it is also the services' default): no demo app, and no
# default operator key, so a container refuses to start until OPERATOR_KEY is given.
# A container must listen on its own network interface to be reachable at all; the
# ports it publishes decide who can reach it.
ENV PUSH_MODE=production
ENV BIND_HOST=0.0.0.0
USER node
