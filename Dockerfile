# One image for every service; docker-compose.yml picks the entry point.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts
COPY tsconfig.json ./
COPY common ./common
COPY schemas ./schemas
COPY auth ./auth
COPY collector ./collector
COPY dispatcher ./dispatcher
COPY pusher ./pusher
COPY cli ./cli
ENV BIND_HOST=0.0.0.0
USER node
