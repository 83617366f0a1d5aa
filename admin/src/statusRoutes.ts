import { Router, type RequestHandler } from 'express';
import type { Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { Topics } from '../../protocol/topics.js';
import type { TaskStore, TaskView } from '../../store/tasks.js';
import { showTask } from './taskDisplay.js';
import { currentBoots, restartedTaskNodes } from '../../store/taskBoots.js';
import { liveNodes, type NodeInfo } from '../../store/nodeRegistry.js';
import { notFound, PushError, unavailable, withTimeout } from '../../platform/errors.js';
import { MESSAGE_ID_PATTERN } from '../../protocol/codes.js';
import type { Registry } from '../../platform/metrics.js';
import { mapBounded } from '../../platform/concurrency.js';
import { nodeHttpUrl, type Sample, type StatusSampler } from './statusSampler.js';
import { traceMessage } from './traceReport.js';
import type { DeliveryStore } from '../../store/deliveryStore.js';
import type { MessageReader } from '../../store/messages.js';
import { KafkaReadings, registerKafkaGauges } from './kafkaReadings.js';

export type { LagReport } from './kafkaReadings.js';

export interface ServiceHealth {
  name: string;
  url: string;
  healthy: boolean;
  ready: boolean;
  error?: string;
  /** Failing readiness checks, from /readyz. */
  failing?: string[];
}

/** Health and readiness of one HTTP service, bounded in time. */
export async function checkService(name: string, url: string, timeoutMs = 2000): Promise<ServiceHealth> {
  try {
    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await ready.json().catch(() => ({}))) as { checks?: Record<string, { ok: boolean }> };
    const failing = Object.entries(body.checks ?? {})
      .filter(([, c]) => !c.ok)
      .map(([k]) => k);
    return { name, url, healthy: health.ok, ready: ready.ok, ...(failing.length ? { failing } : {}) };
  } catch (err) {
    return { name, url, healthy: false, ready: false, error: (err as Error).message };
  }
}

export interface StatusDeps {
  kafka: Kafka;
  redis: Redis;
  /** Stored messages and their outbox entries, for message traces. */
  messages: MessageReader;
  /** Deliveries, acks and attempts, for message traces. */
  store: DeliveryStore;
  tasks: TaskStore;
  topics: Topics;
  topicPrefix: string;
  sampler: StatusSampler;
  auth: RequestHandler;
  selfUrl: () => string;
  collectorUrl: string;
  authUrl: string;
  dispatcherUrls: string[];
  /** Sent to a pusher's own drain endpoint by `POST /v1/admin/nodes/:nodeId/drain`. */
  operatorKey: string;
  /** Node URLs (from Redis) the admin service may call (statusSampler.ts createNodeUrlPolicy). Default: any. */
  allowNodeUrl?: (url: string) => boolean;
  /** Dead letters not purged (the DLQ index); the topic's record count is reported either way. */
  dlqEntries?: () => Promise<number>;
  /** Where `push_consumer_lag` and `push_dead_letter_records` are exported (computed on scrape). */
  registry?: Registry;
}

const isLive = (t: TaskView) => t.state === 'running' || t.state === 'paused';

/** The 20 latest tasks as the status shows them, counted by state; errors are reported, not thrown. */
async function taskSummary(tasks: TaskStore, redis: Redis) {
  try {
    const listed: TaskView[] = await withTimeout(tasks.list({ limit: 20 }), 5000, 'task list');
    // Whether each live-looking task still has a state in Redis (undefined: Redis did not answer).
    const hot = await Promise.all(
      listed.map((t) =>
        isLive(t)
          ? tasks.hotState(t.id).then(
              (h) => h !== undefined,
              () => undefined,
            )
          : undefined,
      ),
    );
    const restarted = await restartedNodesOf(listed.filter(isLive), redis);
    const now = Date.now();
    const recent = listed.map((t, i) => showTask(t, hot[i], now, restarted.get(t.id)));
    const counts: Record<string, number> = {};
    for (const t of recent) counts[t.state] = (counts[t.state] ?? 0) + 1;
    return { counts, recent };
  } catch (err) {
    return { counts: {}, recent: [], error: (err as Error).message };
  }
}

/** Which nodes run another boot than the one each live-looking task was sent to (taskBoots.ts). */
async function restartedNodesOf(live: TaskView[], redis: Redis): Promise<Map<string, string[]>> {
  const boots = live.length > 0 ? await currentBoots(redis).catch(() => undefined) : undefined;
  const restarted = new Map<string, string[]>();
  if (boots) for (const t of live) restarted.set(t.id, await restartedTaskNodes(redis, t.id, boots).catch(() => []));
  return restarted;
}

/** The status's row per live node: its registration, sampled rates and connections, and readiness. */
function nodeRows(nodes: NodeInfo[], services: ServiceHealth[], rates: ReturnType<StatusSampler['nodeRates']>, latest: Sample | undefined) {
  return nodes.map((n) => ({
    id: n.id,
    url: n.url,
    adminUrl: nodeHttpUrl(n),
    connections: latest?.nodes[n.id]?.up ? latest.nodes[n.id]!.connections : n.connections,
    draining: n.draining,
    deliveredPerSecond: rates.get(n.id)?.deliveredPerSecond ?? null,
    ackedPerSecond: rates.get(n.id)?.ackedPerSecond ?? null,
    ready: services.find((s) => s.name === `pusher ${n.id}`)?.ready ?? false,
  }));
}

/** The body of `GET /v1/admin/status`, built at most once a second however many dashboards poll. */
class StatusReport {
  private cache: { at: number; body: Promise<unknown> } | undefined;

  constructor(
    private readonly deps: StatusDeps,
    private readonly kafka: KafkaReadings,
    private readonly allowNodeUrl: (url: string) => boolean,
  ) {}

  get(): Promise<unknown> {
    if (!this.cache || Date.now() - this.cache.at >= 1000) {
      const body = this.build();
      this.cache = { at: Date.now(), body };
      body.catch(() => (this.cache = undefined));
    }
    return this.cache.body;
  }

  private async build() {
    const { deps } = this;
    const nodes = await liveNodes(deps.redis).catch(() => [] as NodeInfo[]);
    const rates = deps.sampler.nodeRates();
    const latest = deps.sampler.latest();
    const [services, lag, tasks, dlq] = await Promise.all([
      mapBounded(this.targets(nodes), 16, ([name, url]) => this.health(name, url)),
      this.kafka.lag(nodes),
      taskSummary(deps.tasks, deps.redis),
      this.kafka.dlqSize(),
    ]);
    return {
      at: new Date().toISOString(),
      services,
      nodes: nodeRows(nodes, services, rates, latest),
      lag,
      tasks,
      dlq,
      throughput: deps.sampler.series().slice(-60),
    };
  }

  /** Every service the status checks: collector, auth, this admin service, the dispatchers and the live pushers. */
  private targets(nodes: NodeInfo[]): [string, string][] {
    const { deps } = this;
    const dispatchers = deps.dispatcherUrls.filter((u) => u !== deps.selfUrl());
    return [
      ['collector', deps.collectorUrl],
      ['auth', deps.authUrl],
      ['admin', deps.selfUrl()],
      ...dispatchers.map((u): [string, string] => ['dispatcher', u]),
      ...nodes.map((n): [string, string] => [`pusher ${n.id}`, nodeHttpUrl(n)]),
    ];
  }

  private health(name: string, url: string): Promise<ServiceHealth> {
    if (name.startsWith('pusher ') && !this.allowNodeUrl(url)) {
      return Promise.resolve({ name, url, healthy: false, ready: false, error: 'host not in NODE_URL_ALLOWED_HOSTS: not called' });
    }
    return checkService(name, url);
  }
}

/** `POST /v1/admin/nodes/:nodeId/drain`: operators reach one admin endpoint; it forwards a drain to the node's own. */
function drainHandler(deps: StatusDeps, allowNodeUrl: (url: string) => boolean): RequestHandler {
  return async (req, res) => {
    const id = String(req.params.nodeId);
    const nodes = await liveNodes(deps.redis);
    const node = nodes.find((n) => n.id === id);
    if (!node) throw notFound(`no live node ${id}; live nodes: ${nodes.map((n) => n.id).join(', ') || 'none'}`);
    const url = nodeHttpUrl(node);
    if (!allowNodeUrl(url)) {
      throw new PushError(
        'NODE_URL_NOT_ALLOWED',
        `node ${id} registered the admin URL ${url}, whose host is not in NODE_URL_ALLOWED_HOSTS; it was not called`,
        {
          status: 403,
        },
      );
    }
    let answer: Response;
    try {
      answer = await fetch(`${url}/v1/admin/drain`, {
        method: 'POST',
        headers: { authorization: `Bearer ${deps.operatorKey}` },
        signal: AbortSignal.timeout(5000),
      });
    } catch (err) {
      throw unavailable(`node ${id} at ${url} did not answer: ${(err as Error).message}`, err);
    }
    res.status(answer.status).json(await answer.json().catch(() => ({ error: { code: 'UPSTREAM', message: `node ${id} answered ${answer.status}` } })));
  };
}

/** `GET /v1/admin/trace/:messageId`. */
function traceHandler(deps: StatusDeps): RequestHandler {
  return async (req, res) => {
    const id = String(req.params.messageId);
    if (!MESSAGE_ID_PATTERN.test(id)) throw notFound(`no message ${id}: message ids are 26 characters of [0-9A-Z]`);
    const report = await traceMessage({ messages: deps.messages, redis: deps.redis, store: deps.store }, id);
    if (!report) throw notFound(`no trace of message ${id}: unknown id, a transient message not yet dispatched, or its trace expired`);
    res.json(report);
  };
}

/**
 * Operator status: `GET /v1/admin/status` (services, nodes, consumer lag,
 * tasks, dead letters, throughput and latency series), `GET /v1/admin/lag`,
 * `POST /v1/admin/nodes/:nodeId/drain` and `GET /v1/admin/trace/:messageId`.
 */
export function statusRoutes(deps: StatusDeps): Router & { close(): Promise<void> } {
  const { redis, auth } = deps;
  const allowNodeUrl = deps.allowNodeUrl ?? (() => true);
  const kafka = new KafkaReadings(deps);
  if (deps.registry) registerKafkaGauges(deps.registry, kafka, redis);
  const status = new StatusReport(deps, kafka, allowNodeUrl);

  const router = Router() as Router & { close(): Promise<void> };
  router.get('/v1/admin/status', auth, async (_req, res) => {
    res.json(await status.get());
  });
  router.get('/v1/admin/lag', auth, async (_req, res) => {
    const report = await kafka.lag(await liveNodes(redis).catch(() => []));
    res.status(report.error ? 503 : 200).json(report.error ? { error: { code: 'UNAVAILABLE', message: `cannot read consumer lag: ${report.error}` } } : report);
  });
  router.post('/v1/admin/nodes/:nodeId/drain', auth, drainHandler(deps, allowNodeUrl));
  router.get('/v1/admin/trace/:messageId', auth, traceHandler(deps));
  router.close = () => kafka.close();
  return router;
}
