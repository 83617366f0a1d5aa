/**
 * Installs the Centrifugo peer into the git-ignored cache .infra/peers/bin
 * (once; later runs reuse it). First `go install ...@v5.4.9` with GOBIN; the
 * module proxy may refuse the version list that `go install` asks for (to check
 * deprecation), so the fallback downloads exactly that version with
 * `go mod download` and builds it from a writable copy with `go build`.
 * Every step is logged to .infra/peers/install.log.
 *
 *   npx tsx bench/peers/installCentrifugo.ts
 */
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { infraPath } from '../../infra/paths.js';

export const CENTRIFUGO_MODULE = 'github.com/centrifugal/centrifugo/v5';
export const CENTRIFUGO_VERSION = 'v5.4.9';
export const peersDir = infraPath('peers');
export const centrifugoBin = path.join(peersDir, 'bin', 'centrifugo');
const marker = path.join(peersDir, 'bin', `.centrifugo-${CENTRIFUGO_VERSION}`);
const logFile = path.join(peersDir, 'install.log');

export const centrifugoInstalled = (): boolean => existsSync(centrifugoBin) && existsSync(marker);

/** Runs a command, appending its output to the install log; rejects with the tail of it on failure. */
function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs: number; log: (l: string) => void; what: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    appendFileSync(logFile, `\n$ ${cmd} ${args.join(' ')}\n`);
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (d: Buffer) => {
      out += d.toString();
      appendFileSync(logFile, d);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const t0 = Date.now();
    const progress = setInterval(() => opts.log(`  ${opts.what}: ${Math.round((Date.now() - t0) / 1000)} s...`), 10_000);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('close', (code, signal) => {
      clearInterval(progress);
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${opts.what} failed (${code ?? signal}): ${out.trim().split('\n').slice(-4).join(' | ')}`));
    });
  });
}

/** Makes sure the Centrifugo binary is in the cache; returns its path. Throws with the reason if it cannot. */
export async function installCentrifugo(log: (line: string) => void = console.log): Promise<string> {
  if (centrifugoInstalled()) return centrifugoBin;
  mkdirSync(path.dirname(centrifugoBin), { recursive: true });
  writeFileSync(logFile, `install of ${CENTRIFUGO_MODULE}@${CENTRIFUGO_VERSION} at ${new Date().toISOString()}\n`);
  const ldflags = `-X ${CENTRIFUGO_MODULE}/internal/build.Version=${CENTRIFUGO_VERSION.slice(1)}`;
  log(`peers: installing Centrifugo ${CENTRIFUGO_VERSION} with go (first run, a few minutes; log in ${path.relative(process.cwd(), logFile)})`);
  try {
    await run('go', ['install', `-ldflags=${ldflags}`, `${CENTRIFUGO_MODULE}@${CENTRIFUGO_VERSION}`], {
      env: { GOBIN: path.dirname(centrifugoBin), GOFLAGS: '-buildvcs=false' },
      timeoutMs: 900_000,
      log,
      what: 'go install',
    });
  } catch (err) {
    log(`peers: ${(err as Error).message}`);
    log('peers: falling back to go mod download + go build of that exact version');
    const info = JSON.parse(
      await run('go', ['mod', 'download', '-json', `${CENTRIFUGO_MODULE}@${CENTRIFUGO_VERSION}`], { timeoutMs: 300_000, log, what: 'go mod download' }),
    ) as { Dir?: string; Error?: string };
    if (!info.Dir) throw new Error(`go mod download gave no source folder: ${info.Error ?? 'unknown error'}`);
    const src = path.join(peersDir, 'src', 'centrifugo');
    rmSync(src, { recursive: true, force: true });
    cpSync(info.Dir, src, { recursive: true });
    await run('chmod', ['-R', 'u+w', src], { timeoutMs: 30_000, log, what: 'chmod' });
    await run('go', ['build', `-ldflags=${ldflags}`, '-o', centrifugoBin, '.'], {
      cwd: src,
      env: { GOFLAGS: '-buildvcs=false' },
      timeoutMs: 900_000,
      log,
      what: 'go build',
    });
  }
  if (!existsSync(centrifugoBin)) throw new Error(`build finished but ${centrifugoBin} is missing`);
  writeFileSync(marker, `${new Date().toISOString()}\n`);
  log(`peers: Centrifugo installed at ${path.relative(process.cwd(), centrifugoBin)}`);
  return centrifugoBin;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  installCentrifugo().then(
    (bin) => console.log(bin),
    (err) => {
      console.error(String(err));
      process.exit(1);
    },
  );
}
