import { Router, type RequestHandler } from 'express';
import type { Admin, Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { Db } from 'mongodb';
import type { Topics } from '../../protocol/topics.js';
import type { TaskStore, TaskView } from '../../store/tasks.js';
import { showTask } from './taskDisplay.js';
import { currentBoots, restartedTaskNodes } from '../../dispatcher/src/taskBoots.js';
import { liveNodes, type NodeInfo } from '../../store/nodeRegistry.js';
import { consumerLag, stackGroups, type GroupLag } from '../../platform/kafka/consumerLag.js';
import { notFound, PushError, unavailable, withTimeout } from '../../platform/errors.js';
import { MESSAGE_ID_PATTERN } from '../../protocol/codes.js';
import { Gauge, type Registry } from '../../platform/metrics.js';
import { nodeHttpUrl, type StatusSampler } from './statusSampler.js';
import { traceMessage } from './traceReport.js';
import type { DeliveryStore } from '../../store/deliveryStore.js';

export interface ServiceHealth {
  name: string;
  url: string;
  healthy: boolean;
  ready: boolean;
  error?: string;
  /** Failing readiness checks, from /readyz. */
  failing?: string[];
}

export interface LagReport {
  groups: GroupLag[];
  total: number;
  error?: string;
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

/** Runs `fn` over `items` with at most `limit` at once, keeping the order of results. */
async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface StatusDeps {
  kafka: Kafka;
  redis: Redis;
  db: Db;
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

/**
 * Operator status: `GET /v1/admin/status` (services, nodes, consumer lag,
 * tasks, dead letters, throughput and latency series), `GET /v1/admin/lag`
 * and `GET /v1/admin/trace/:messageId`. Lag is cached for a second so a few
 * dashboards polling at once cost Kafka one round of offset requests.
 */
export function statusRoutes(deps: StatusDeps): Router & { close(): Promise<void> } {
  const { kafka, redis, topics, auth } = deps;
  const allowNodeUrl = deps.allowNodeUrl ?? (() => true);
  let admin: Admin | undefined;
  let connecting: Promise<Admin> | undefined;
  const getAdmin = () =>
    (connecting ??= (async () => {
      const a = kafka.admin();
      await a.connect();
      admin = a;
      return a;
    })().catch((err: unknown) => {
      connecting = undefined;
      throw err;
    }));

  let lagCache: { at: number; report: Promise<LagReport> } | undefined;
  const lag = (nodes: NodeInfo[]): Promise<LagReport> => {
    if (lagCache && Date.now() - lagCache.at < 1000) return lagCache.report;
    const report = (async () => {
      try {
        const a = await getAdmin();
        const groups = await withTimeout(
          stackGroups(
            a,
            topics,
            deps.topicPrefix,
            nodes.map((n) => n.id),
          ).then((g) => consumerLag(a, g)),
          5000,
          'consumer lag',
        );
        return { groups, total: groups.reduce((n, g) => n + g.lag, 0) };
      } catch (err) {
        return { groups: [], total: 0, error: (err as Error).message };
      }
    })();
    lagCache = { at: Date.now(), report };
    return report;
  };

  const dlqSize = async () => {
    const entries = deps.dlqEntries ? await withTimeout(deps.dlqEntries(), 5000, 'dead-letter entries').catch(() => null) : null;
    try {
      const ends = await withTimeout((await getAdmin()).fetchTopicOffsets(topics.dlq), 5000, 'dead-letter offsets');
      return { topic: topics.dlq, records: ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0), entries };
    } catch (err) {
      return { topic: topics.dlq, records: null, entries, error: (err as Error).message };
    }
  };

  if (deps.registry) {
    const registers = [deps.registry];
    new Gauge({
      name: 'push_consumer_lag',
      help: 'Records not yet committed by a consumer group, per group and topic (computed on scrape)',
      labelNames: ['group', 'topic'],
      registers,
      async collect() {
        const report = await lag(await liveNodes(redis).catch(() => []));
        this.reset();
        for (const g of report.groups) for (const t of g.topics) this.set({ group: g.group, topic: t.topic }, t.lag);
      },
    });
    new Gauge({
      name: 'push_dead_letter_records',
      help: 'Records on push.dlq (retained on the topic)',
      registers,
      async collect() {
        const d = await dlqSize();
        if (d.records !== null) this.set(d.records);
      },
    });
  }

  const taskSummary = async () => {
    try {
      const listed: TaskView[] = await withTimeout(deps.tasks.list({ limit: 20 }), 5000, 'task list');
      // Whether each live-looking task still has a state in Redis (undefined: Redis did not answer).
      const hot = await Promise.all(
        listed.map((t) =>
          t.state === 'running' || t.state === 'paused'
            ? deps.tasks.hotState(t.id).then(
                (h) => h !== undefined,
                () => undefined,
              )
            : undefined,
        ),
      );
      // Which nodes run another boot than the one each live-looking task was sent to (taskBoots.ts).
      const live = listed.filter((t) => t.state === 'running' || t.state === 'paused');
      const boots = live.length > 0 ? await currentBoots(redis).catch(() => undefined) : undefined;
      const restarted = new Map<string, string[]>();
      if (boots) for (const t of live) restarted.set(t.id, await restartedTaskNodes(redis, t.id, boots).catch(() => []));
      const now = Date.now();
      const recent = listed.map((t, i) => showTask(t, hot[i], now, restarted.get(t.id)));
      const counts: Record<string, number> = {};
      for (const t of recent) counts[t.state] = (counts[t.state] ?? 0) + 1;
      return { counts, recent };
    } catch (err) {
      return { counts: {}, recent: [], error: (err as Error).message };
    }
  };

  // Several dashboards polling at once share one status per second.
  let statusCache: { at: number; body: Promise<unknown> } | undefined;
  const router = Router() as Router & { close(): Promise<void> };
  router.get('/v1/admin/status', auth, async (_req, res) => {
    if (!statusCache || Date.now() - statusCache.at >= 1000) {
      const body = buildStatus();
      statusCache = { at: Date.now(), body };
      body.catch(() => (statusCache = undefined));
    }
    res.json(await statusCache.body);
  });

  const buildStatus = async () => {
    const nodes = await liveNodes(redis).catch(() => [] as NodeInfo[]);
    const rates = deps.sampler.nodeRates();
    const latest = deps.sampler.latest();
    const dispatchers = deps.dispatcherUrls.filter((u) => u !== deps.selfUrl());
    const targets: [string, string][] = [
      ['collector', deps.collectorUrl],
      ['auth', deps.authUrl],
      ['admin', deps.selfUrl()],
      ...dispatchers.map((u): [string, string] => ['dispatcher', u]),
      ...nodes.map((n): [string, string] => [`pusher ${n.id}`, nodeHttpUrl(n)]),
    ];
    const [services, lagReport, tasks, dlq] = await Promise.all([
      mapBounded(targets, 16, async ([name, url]): Promise<ServiceHealth> =>
        name.startsWith('pusher ') && !allowNodeUrl(url)
          ? { name, url, healthy: false, ready: false, error: 'host not in NODE_URL_ALLOWED_HOSTS: not called' }
          : checkService(name, url),
      ),
      lag(nodes),
      taskSummary(),
      dlqSize(),
    ]);
    const series = deps.sampler.series();
    return {
      at: new Date().toISOString(),
      services,
      nodes: nodes.map((n) => ({
        id: n.id,
        url: n.url,
        adminUrl: nodeHttpUrl(n),
        connections: latest?.nodes[n.id]?.up ? latest.nodes[n.id]!.connections : n.connections,
        draining: n.draining,
        deliveredPerSecond: rates.get(n.id)?.deliveredPerSecond ?? null,
        ackedPerSecond: rates.get(n.id)?.ackedPerSecond ?? null,
        ready: services.find((s) => s.name === `pusher ${n.id}`)?.ready ?? false,
      })),
      lag: lagReport,
      tasks,
      dlq,
      throughput: series.slice(-60),
    };
  };

  router.get('/v1/admin/lag', auth, async (_req, res) => {
    const report = await lag(await liveNodes(redis).catch(() => []));
    res.status(report.error ? 503 : 200).json(report.error ? { error: { code: 'UNAVAILABLE', message: `cannot read consumer lag: ${report.error}` } } : report);
  });

  // Operators reach one admin endpoint; the admin service forwards a drain to the node's own.
  router.post('/v1/admin/nodes/:nodeId/drain', auth, async (req, res) => {
    const id = String(req.params.nodeId);
    const nodes = await liveNodes(redis);
    const node = nodes.find((n) => n.id === id);
    if (!node) throw notFound(`no live node ${id}; live nodes: ${nodes.map((n) => n.id).join(', ') || 'none'}`);
    if (!allowNodeUrl(nodeHttpUrl(node))) {
      throw new PushError(
        'NODE_URL_NOT_ALLOWED',
        `node ${id} registered the admin URL ${nodeHttpUrl(node)}, whose host is not in NODE_URL_ALLOWED_HOSTS; it was not called`,
        { status: 403 },
      );
    }
    let answer: Response;
    try {
      answer = await fetch(`${nodeHttpUrl(node)}/v1/admin/drain`, {
        method: 'POST',
        headers: { authorization: `Bearer ${deps.operatorKey}` },
        signal: AbortSignal.timeout(5000),
      });
    } catch (err) {
      throw unavailable(`node ${id} at ${nodeHttpUrl(node)} did not answer: ${(err as Error).message}`, err);
    }
    res.status(answer.status).json(await answer.json().catch(() => ({ error: { code: 'UPSTREAM', message: `node ${id} answered ${answer.status}` } })));
  });

  router.get('/v1/admin/trace/:messageId', auth, async (req, res) => {
    const id = String(req.params.messageId);
    if (!MESSAGE_ID_PATTERN.test(id)) throw notFound(`no message ${id}: message ids are 26 characters of [0-9A-Z]`);
    const report = await traceMessage({ db: deps.db, redis, store: deps.store }, id);
    if (!report) throw notFound(`no trace of message ${id}: unknown id, a transient message not yet dispatched, or its trace expired`);
    res.json(report);
  });

  router.close = async () => {
    await admin?.disconnect().catch(() => undefined);
  };
  return router;
}
