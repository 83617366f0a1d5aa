import { bootService } from '../../platform/lifecycle.js';
import { loadConfig } from './config.js';
import { startPusher } from './startPusher.js';

// Shutdown covers a drain (clients move to other nodes) plus closing everything else.
await bootService(
  'pusher',
  () => loadConfig(process.env),
  startPusher,
  (config) => config.drainTimeoutMs + 8000,
);
