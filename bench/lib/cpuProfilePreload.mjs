// Preloaded through NODE_OPTIONS (`--import`) by `npm run bench -- <scenario> --profile`:
// Node refuses `--cpu-prof` in NODE_OPTIONS, so this starts the V8 profiler itself and
// writes `<PUSH_CPU_PROFILE_DIR>/<pid>-<script>.cpuprofile` when the process exits.
// The inspector session of the main thread answers synchronously, so this works
// inside an 'exit' handler.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

const dir = process.env.PUSH_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  process.once('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (err || !result) return;
      const script = path.basename(path.dirname(path.dirname(process.argv[1] ?? 'node'))) || 'node';
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `${process.pid}-${script}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
