/** Entry point of `push` (cli/bin/push.js, `npm run push -- ...`). */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2), process.env);
