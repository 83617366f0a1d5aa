import { bootService } from '../../common/src/lifecycle.js';
import { loadConfig } from './config.js';
import { startDispatcher } from './startDispatcher.js';

await bootService('dispatcher', () => loadConfig(process.env), startDispatcher);
