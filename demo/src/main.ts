import { bootService } from '../../platform/lifecycle.js';
import { loadConfig } from './config.js';
import { createDemoServer } from './demoServer.js';

await bootService(
  'demo',
  () => loadConfig(process.env),
  async ({ config, logger, onClose }) => {
    const demo = await createDemoServer(config);
    const url = await demo.listen();
    onClose('http', () => demo.close());
    logger.info({ url, auth: config.authUrl, collector: config.collectorUrl }, 'demo page listening');
  },
);
