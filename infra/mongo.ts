import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { infraPath } from './paths.js';
import { assertPortsFree, livePid, pidControls, runCommand, spawnDetached, waitReady, which, withProgress, type Log, type ServerHandle } from './process.js';
import { checkGo } from './tools.js';
import type { MongoBackend } from './config.js';

export const FERRETDB_VERSION = 'v1.24.2';
const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';
const ferretRoot = infraPath('ferretdb');
export const ferretBin = path.join(ferretRoot, 'bin', 'ferretdb');

export interface MongoOptions {
  dir: string;
  port: number;
  log: Log;
  /** FerretDB's storage: a PostgreSQL URL (the default backend), or SQLite files under dir. Ignored for mongod. */
  storage: { backend: 'postgresql'; url: string } | { backend: 'sqlite' };
}

export interface MongoHandle extends ServerHandle {
  url: string;
  engine: 'mongod' | 'ferretdb';
  /** FerretDB's backend; undefined for mongod. */
  backend?: MongoBackend;
}

export const mongoPidFile = (dir: string): string => path.join(dir, 'mongo.pid');
export const mongoCmdlineNeedles = (dir: string, port: number): string[] => [dir, String(port)];

/** A real mongod wins when installed; otherwise we run FerretDB (on PostgreSQL unless PUSH_MONGO_BACKEND=sqlite). */
export const mongoEngine = (): 'mongod' | 'ferretdb' => (which('mongod') ? 'mongod' : 'ferretdb');

export function ferretBuilt(): boolean {
  if (!fs.existsSync(ferretBin)) return false;
  const res = spawnSync(ferretBin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return res.status === 0 && res.stdout.includes(FERRETDB_VERSION);
}

export function mongoProvisioned(): boolean {
  return mongoEngine() === 'mongod' || ferretBuilt();
}

function makeWritable(dir: string): void {
  fs.chmodSync(dir, 0o755);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) makeWritable(p);
    else if (entry.isFile()) fs.chmodSync(p, 0o644);
  }
}

/**
 * Builds FerretDB from source. `go install …@v1.24.2` is not usable: the Go proxy answers 403 for the
 * module's version list (needed for its deprecation check), and even when it works the binary panics at
 * start-up because build/version/version.txt is generated upstream and absent from the module zip.
 * So: fetch the module through a throwaway module (`go get` avoids the list lookup), copy its source,
 * add version.txt and build it as the main module.
 */
export async function provisionMongo(log: Log): Promise<void> {
  if (mongoProvisioned()) return;
  const go = checkGo();
  if (!go.ok) throw new Error(`${go.hint} (found: ${go.found})`);

  const started = Date.now();
  log(`mongo: building FerretDB ${FERRETDB_VERSION} with Go (first run, takes a few minutes)...`);
  const buildDir = path.join(ferretRoot, 'build');
  const srcDir = path.join(ferretRoot, 'src');
  const logFile = path.join(ferretRoot, 'build.log');
  fs.mkdirSync(buildDir, { recursive: true });
  fs.mkdirSync(path.dirname(ferretBin), { recursive: true });
  fs.writeFileSync(path.join(buildDir, 'go.mod'), 'module ferretbuild\n\ngo 1.21\n');
  // -buildvcs=false: the source copy sits inside this repo's git work tree.
  const env = { ...process.env, GOFLAGS: '-mod=mod -buildvcs=false' };

  await withProgress(log, 'mongo: building FerretDB', async () => {
    await runCommand('go', ['get', `${FERRETDB_MODULE}/cmd/ferretdb@${FERRETDB_VERSION}`], { cwd: buildDir, env, logFile });
    const moduleDir = (await runCommand('go', ['list', '-m', '-f', '{{.Dir}}', FERRETDB_MODULE], { cwd: buildDir, env, logFile })).trim();
    if (!fs.existsSync(path.join(moduleDir, 'go.mod'))) throw new Error(`FerretDB module source not found (got "${moduleDir}")`);

    fs.rmSync(srcDir, { recursive: true, force: true });
    fs.cpSync(moduleDir, srcDir, { recursive: true });
    makeWritable(srcDir); // the Go module cache is read-only
    fs.writeFileSync(path.join(srcDir, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
    fs.writeFileSync(path.join(srcDir, 'build', 'version', 'package.txt'), 'local-infra\n');

    await runCommand('go', ['build', '-o', ferretBin, './cmd/ferretdb'], { cwd: srcDir, env, logFile });
  });
  if (!ferretBuilt()) throw new Error(`FerretDB was built but \`${ferretBin} --version\` does not work (see ${logFile})`);
  log(`mongo: FerretDB built in ${Math.round((Date.now() - started) / 1000)}s`);
}

/** True when a MongoDB-compatible server answers ping at 127.0.0.1:port. */
export async function mongoAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  const client = new MongoClient(`mongodb://127.0.0.1:${port}/?directConnection=true`, {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: timeoutMs * 2,
  });
  try {
    await client.db('admin').admin().ping();
    return true;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => {});
  }
}

export function mongoHandle(dir: string, port: number, pid: number, engine: MongoHandle['engine'], backend?: MongoBackend): MongoHandle {
  const pidFile = mongoPidFile(dir);
  return {
    url: `mongodb://127.0.0.1:${port}`,
    engine,
    ...(backend ? { backend } : {}),
    ...pidControls(pid, pidFile),
  };
}

/** FerretDB's storage flags. Each backend keeps its own --state-dir (the caller's dir), so switching is clean. */
function ferretStorageArgs(dir: string, storage: MongoOptions['storage']): string[] {
  if (storage.backend === 'postgresql') return ['--handler=postgresql', `--postgresql-url=${storage.url}`];
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  return [
    '--handler=sqlite',
    // WAL (FerretDB's default) with synchronous=NORMAL: a commit no longer waits for an fsync of the
    // WAL; a crash of the process loses nothing, a power loss can lose the last commits (docs/operations.md).
    `--sqlite-url=file:${path.join(dir, 'data')}/?_pragma=synchronous(normal)`,
  ];
}

export async function startMongo(opts: MongoOptions): Promise<MongoHandle> {
  const { dir, port } = opts;
  const pidFile = mongoPidFile(dir);
  fs.mkdirSync(dir, { recursive: true });
  const running = livePid(pidFile, mongoCmdlineNeedles(dir, port));
  if (running !== undefined) throw new Error(`mongo in ${dir} is already running (pid ${running})`);

  await assertPortsFree('mongo', [port]);
  const engine = mongoEngine();
  let cmd: string;
  let args: string[];
  if (engine === 'mongod') {
    fs.mkdirSync(path.join(dir, 'db'), { recursive: true });
    cmd = 'mongod';
    args = ['--bind_ip', '127.0.0.1', '--port', String(port), '--dbpath', path.join(dir, 'db')];
  } else {
    await provisionMongo(opts.log);
    cmd = ferretBin;
    args = [
      ...ferretStorageArgs(dir, opts.storage),
      `--listen-addr=127.0.0.1:${port}`,
      `--state-dir=${dir}`,
      '--telemetry=disable',
      // warn would log every error reply, incl. the driver's routine endSessions (unsupported in 1.x)
      '--log-level=error',
      // "-" disables the debug/metrics HTTP listener (default 127.0.0.1:8088 would collide between instances)
      '--debug-addr=-',
    ];
  }
  const logFile = path.join(dir, 'stdout.log');
  const child = await spawnDetached(cmd, args, { cwd: dir, logFile, pidFile });
  const handle = mongoHandle(dir, port, child.pid, engine, engine === 'ferretdb' ? opts.storage.backend : undefined);
  try {
    await waitReady(`${engine} on 127.0.0.1:${port}`, child.pid, () => mongoAnswers(port), {
      timeoutMs: 30_000,
      logFiles: [logFile],
    });
  } catch (err) {
    await handle.kill();
    throw err;
  }
  return handle;
}
