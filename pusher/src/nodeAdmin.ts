import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Logger } from '../../platform/logger.js';
import type { ServiceDeps } from '../../platform/lifecycle.js';
import type { DependencyCheck } from '../../platform/dependencyChecks.js';
import { createHttpService } from '../../platform/http/httpServer.js';
import { requireOperator } from '../../platform/http/httpAuth.js';
import { heartbeatNode, pruneNodes, removeNode } from '../../store/nodeRegistry.js';
import type { PusherConfig } from './config.js';

const NODE_TTL_MS = 15_000;

export interface NodeAdminDeps {
  config: PusherConfig;
  logger: Logger;
  onClose: ServiceDeps<PusherConfig>['onClose'];
  redis: Redis;
  registry: Registry;
  checks: DependencyCheck[];
  /** What the node registry says about this node now. */
  node: () => { boot: string; connections: number; accepting: boolean };
}

/**
 * The node's operator side: its admin listener (drain, metrics, health) on a listener of its
 * own, loopback by default (the public port faces every browser, and a drain there was one
 * guessed key away), and its entry in the node registry, refreshed every third of its TTL and
 * removed on close. Resolves with the heartbeat, for the moments the node must be re-announced
 * at once (draining, Redis back).
 */
export async function startNodeAdmin(deps: NodeAdminDeps): Promise<{ beat: () => Promise<void>; adminUrl: string }> {
  const { config, logger, onClose, redis } = deps;
  const adminHttp = createHttpService({
    name: 'pusher',
    host: config.adminHost,
    port: config.adminPort,
    logger,
    registry: deps.registry,
    checks: deps.checks,
    isAccepting: () => deps.node().accepting,
  });
  adminHttp.app.post('/v1/admin/drain', requireOperator(config.operatorKey, config.operatorAuth), (_req, res) => {
    res.status(202).json({ status: 'draining', nodeId: config.nodeId });
    // The same path as SIGTERM: drain, close everything, exit 0.
    setImmediate(() => process.kill(process.pid, 'SIGTERM'));
  });
  const adminAddr = await adminHttp.listen();
  onClose('admin-http', () => adminHttp.close());
  const registeredAdminUrl = adminUrl(config, adminAddr.port);

  const beat = () => {
    const n = deps.node();
    return (
      heartbeatNode(
        redis,
        { id: config.nodeId, boot: n.boot, url: config.publicUrl, adminUrl: registeredAdminUrl, connections: n.connections, draining: !n.accepting },
        NODE_TTL_MS,
      )
        // Every pusher prunes on its heartbeat (one idempotent script), so push:nodes and push:boots stay bounded.
        .then(() => pruneNodes(redis, config.nodePruneMs))
        .then((gone) => {
          if (gone.length > 0) logger.info({ nodes: gone }, 'pruned nodes whose heartbeat lapsed long ago');
        })
        .catch((err: Error) => logger.warn({ err: err.message }, 'node heartbeat failed'))
    );
  };
  await beat();
  const beatTimer = setInterval(() => void beat(), NODE_TTL_MS / 3);
  onClose('node-registration', async () => {
    clearInterval(beatTimer);
    await removeNode(redis, config.nodeId).catch(() => undefined);
  });
  return { beat, adminUrl: registeredAdminUrl };
}

/** Where operators reach this node's admin listener (health, metrics, drain). */
function adminUrl(config: PusherConfig, port: number): string {
  if (config.adminUrl) return config.adminUrl;
  const host = config.adminHost === '0.0.0.0' || config.adminHost === '::' ? new URL(config.publicUrl).hostname : config.adminHost;
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}
