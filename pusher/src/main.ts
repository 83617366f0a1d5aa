import { bootService } from '../../common/src/lifecycle.js';
import { loadConfig } from './config.js';
import { startPusher } from './startPusher.js';

await bootService('pusher', () => loadConfig(process.env), startPusher);
