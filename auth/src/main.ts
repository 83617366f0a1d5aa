import { bootService } from '../../common/src/lifecycle.js';
import { loadConfig } from './config.js';
import { startAuth } from './startAuth.js';

await bootService('auth', () => loadConfig(process.env), startAuth);
