import { bootService } from '../../platform/lifecycle.js';
import { loadConfig } from './config.js';
import { startCollector } from './startCollector.js';

await bootService('collector', () => loadConfig(process.env), startCollector);
