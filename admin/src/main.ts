import { bootService } from '../../common/src/lifecycle.js';
import { loadConfig } from './config.js';
import { startAdmin } from './startAdmin.js';

await bootService('admin', () => loadConfig(process.env), startAdmin);
