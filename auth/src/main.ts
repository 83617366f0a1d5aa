import { bootService } from '../../platform/lifecycle.js';
import { loadConfig } from './config.js';
import { startAuth } from './startAuth.js';

await bootService('auth', () => loadConfig(process.env), startAuth);
