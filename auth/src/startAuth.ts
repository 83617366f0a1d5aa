import type { AuthConfig } from './config.js';
import type { ServiceDeps } from '../../platform/lifecycle.js';
import { createServiceClients } from '../../platform/serviceClients.js';
import { createHttpService } from '../../platform/http/httpServer.js';
import { createAppStore } from '../../store/apps.js';
import { createSigningKeys } from './signingKeys.js';
import { tokenRoutes } from './tokenRoutes.js';

export async function startAuth(deps: ServiceDeps<AuthConfig>): Promise<void> {
  const { config, logger, onClose } = deps;
  const { registry, checks, mongo, redis } = createServiceClients('auth', deps, { mongo: true, redis: true });
  const apps = createAppStore({ db: mongo!.db });
  const keys = createSigningKeys({ db: mongo!.db, retireAfterMs: 2 * config.tokenTtlSeconds * 1000 });

  if (config.mode === 'development') {
    await apps.ensureIndexes();
    await apps.upsert({ id: 'demo', name: 'Demo app', apiKeys: [config.demoApiKey], allowedOrigins: config.demoOrigins });
    logger.info({ app: 'demo', apiKey: config.demoApiKey }, 'development mode: demo app ready');
  }

  const http = createHttpService({ name: 'auth', host: config.host, port: config.port, logger, registry, checks });
  http.app.use(
    tokenRoutes({
      apps,
      keys,
      redis: redis!,
      operatorKey: config.operatorKey,
      operatorAuth: config.operatorAuth,
      apiKeyAuth: config.apiKeyAuth,
      tokenTtlSeconds: config.tokenTtlSeconds,
      staticNodes: config.staticNodes,
    }),
  );
  const addr = await http.listen();
  onClose('http', () => http.close());
  logger.info({ url: `http://${addr.host}:${addr.port}` }, 'auth listening');
}
