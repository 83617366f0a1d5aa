import { bootService } from '../../platform/lifecycle.js';
import { loadConfig } from './config.js';
import { startAdmin } from './startAdmin.js';

await bootService('admin', () => loadConfig(process.env), startAdmin);
