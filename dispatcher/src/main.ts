import { bootService } from '../../platform/lifecycle.js';
import { loadConfig } from './config.js';
import { startDispatcher } from './startDispatcher.js';

await bootService('dispatcher', () => loadConfig(process.env), startDispatcher);
