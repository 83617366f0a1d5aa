import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { infraPath, repoRoot } from './paths.js';
import {
  assertPortsFree,
  isAlive,
  livePid,
  removePidFile,
  runCommand,
  signal,
  spawnDetached,
  waitExit,
  waitReady,
  withProgress,
  type Log,
  type ServerHandle,
} from './process.js';
import { canAptInstall, type ToolCheck } from './tools.js';

/** Debian installs each major version's server binaries here (not on PATH). */
const PG_LIB = '/usr/lib/postgresql';
/** Superuser created by initdb; FerretDB gets its own role and database. */
const SUPERUSER = 'postgres';
/** OS account that owns the cluster when we run as root (initdb and postgres refuse to run as root). */
const OS_USER = 'postgres';

export interface PostgresOptions {
  /** Holds data/ (the cluster), run/ (unix socket) and the logs. */
  dir: string;
  port: number;
  log: Log;
}

export interface PostgresHandle extends ServerHandle {
  readonly port: number;
  /** Major version, e.g. "15". */
  readonly version: string;
}

export const postgresPidFile = (dir: string): string => path.join(dir, 'postgres.pid');
export const postgresDataDir = (dir: string): string => path.join(dir, 'data');
/** postgres keeps its command line as given, so the data dir and the port identify our server. */
export const postgresCmdlineNeedles = (dir: string, port: number): string[] => [postgresDataDir(dir), `port=${port}`];

/** URL FerretDB uses: loopback TCP, trust authentication (see pg_hba in initCluster). */
export const postgresUrl = (port: number, role: string, database: string): string => `postgres://${role}@127.0.0.1:${port}/${database}`;

/** Newest /usr/lib/postgresql/<v>/bin holding a postgres binary, or undefined. */
export function postgresBinDir(): string | undefined {
  let versions: string[];
  try {
    versions = fs.readdirSync(PG_LIB);
  } catch {
    return undefined;
  }
  const usable = versions
    .filter((v) => /^\d+(\.\d+)?$/.test(v) && fs.existsSync(path.join(PG_LIB, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return usable[0] === undefined ? undefined : path.join(PG_LIB, usable[0], 'bin');
}

/** Major version of a bin dir found by postgresBinDir ("15"). */
export const postgresVersion = (binDir: string): string => path.basename(path.dirname(binDir));

export function checkPostgres(): ToolCheck {
  const bin = postgresBinDir();
  const installable = !bin && canAptInstall();
  return {
    tool: 'postgresql',
    ok: bin !== undefined || installable,
    found: bin ?? (installable ? 'not found (will apt-get install postgresql)' : 'not found'),
    hint: `apt-get install postgresql (as root): FerretDB stores into a private PostgreSQL cluster (server binaries under ${PG_LIB}/<version>/bin)`,
  };
}

let installing: Promise<string> | undefined;

/** Bin dir of the newest installed PostgreSQL; installs Debian's package when missing and we are root. */
export function provisionPostgres(log: Log): Promise<string> {
  const found = postgresBinDir();
  if (found) return Promise.resolve(found);
  if (!canAptInstall()) {
    return Promise.reject(new Error(`PostgreSQL is not installed (no ${PG_LIB}/<version>/bin/postgres): run \`apt-get install postgresql\` as root`));
  }
  installing ??= (async () => {
    const logFile = infraPath('postgres-apt.log');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await withProgress(log, 'postgres: installing postgresql with apt-get', async () => {
      log('postgres: apt-get update...');
      await runCommand('apt-get', ['update'], { env, logFile });
      log('postgres: apt-get install -y postgresql...');
      await runCommand('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], { env, logFile });
    });
    const installed = postgresBinDir();
    if (!installed) throw new Error(`apt-get installed postgresql but ${PG_LIB}/<version>/bin/postgres is missing (see ${logFile})`);
    return installed;
  })();
  return installing;
}

const runningAsRoot = (): boolean => process.getuid?.() === 0;

/** uid/gid of the postgres OS account (created by Debian's package). */
function osUserIds(): { uid: number; gid: number } {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${OS_USER}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error(`running as root, but there is no "${OS_USER}" OS user to own the PostgreSQL cluster (apt-get install postgresql creates it)`);
  }
  return { uid: Number(uid), gid: Number(gid) };
}

/** Command prefix that drops root to the postgres account; setpriv execs, so the pid we spawn is postgres itself. */
function asOwner(cmd: string, args: string[]): [string, string[]] {
  if (!runningAsRoot()) return [cmd, args];
  return ['setpriv', [`--reuid=${OS_USER}`, `--regid=${OS_USER}`, '--init-groups', '--', cmd, ...args]];
}

/** A directory the cluster owner writes to: owned by it when we are root, mode 0700 as initdb wants. */
function ownedDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  if (runningAsRoot()) {
    const { uid, gid } = osUserIds();
    fs.chownSync(dir, uid, gid);
  }
}

/** Every parent of dir must be searchable by the postgres account, or it cannot reach its own data. */
function assertTraversable(dir: string): void {
  if (!runningAsRoot()) return;
  for (let p = path.dirname(path.resolve(dir)); ; p = path.dirname(p)) {
    const mode = fs.statSync(p).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `postgres: ${p} is not searchable by other users (mode ${(mode & 0o777).toString(8)}); the "${OS_USER}" account needs to reach ${dir}: chmod o+x ${p}`,
      );
    }
    if (p === path.dirname(p)) return;
  }
}

/** First start only: initdb, with trust authentication on the unix socket and loopback (like the local Redis and FerretDB). */
async function initCluster(dir: string, binDir: string, log: Log): Promise<void> {
  const data = postgresDataDir(dir);
  if (fs.existsSync(path.join(data, 'PG_VERSION'))) return;
  log(`postgres: initdb ${data} (PostgreSQL ${postgresVersion(binDir)}, first start)...`);
  fs.rmSync(data, { recursive: true, force: true });
  ownedDir(data);
  const [cmd, args] = asOwner(path.join(binDir, 'initdb'), [`--pgdata=${data}`, `--username=${SUPERUSER}`, '--auth=trust', '--encoding=UTF8', '--locale=C']);
  await runCommand(cmd, args, { cwd: dir, logFile: path.join(dir, 'initdb.log') });
}

/**
 * Server settings, on the command line so every start applies the current ones. Durability is
 * PostgreSQL's default and spelled out on purpose (docs/operations.md): a commit returns only once its
 * WAL is flushed to disk, so no acknowledged write is lost when any process (or the machine) crashes.
 */
function serverSettings(dir: string, port: number): string[] {
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: path.join(dir, 'run'),
    fsync: 'on',
    synchronous_commit: 'on',
    full_page_writes: 'on',
    // FerretDB's pool holds up to 50 connections (its pool_max_conns default), plus psql and tests.
    max_connections: '120',
    // A 2-core development machine shared with Kafka, Redis and the services.
    shared_buffers: '256MB',
    effective_cache_size: '1GB',
    work_mem: '8MB',
    maintenance_work_mem: '64MB',
    max_wal_size: '1GB',
    huge_pages: 'off',
    // FerretDB sends the field name as a parameter ((_jsonb -> $1) @> $2) through pgx's cached prepared
    // statements: a generic plan could never match an index on (_jsonb -> 'field'); custom plans do.
    plan_cache_mode: 'force_custom_plan',
    logging_collector: 'off',
    log_min_messages: 'warning',
  };
  return Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
}

/** True when the server accepts connections on 127.0.0.1:port. */
export async function postgresAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  const binDir = postgresBinDir();
  if (!binDir) return false;
  const res = spawnSync(path.join(binDir, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port), '-t', String(Math.ceil(timeoutMs / 1000))], {
    timeout: timeoutMs + 2000,
  });
  return res.status === 0;
}

/** SQL that makes FerretDB's indexes usable by its pushed-down filters (see the file's header). */
const FERRETDB_INDEXES_SQL = path.join(repoRoot, 'infra', 'ferretdbIndexes.sql');

/**
 * Runs SQL as the superuser (loopback TCP, trust) in a database: a statement (`-c`) or a file (`-f`).
 * Returns its unaligned output.
 */
async function sql(dir: string, port: number, input: { database?: string; statement?: string; file?: string }): Promise<string> {
  const binDir = await provisionPostgres(() => {});
  const what = input.file !== undefined ? ['-f', input.file] : ['-c', input.statement ?? ''];
  const args = [
    '-X',
    '-q',
    '-tA',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    SUPERUSER,
    '-d',
    input.database ?? 'postgres',
    ...what,
  ];
  return (await runCommand(path.join(binDir, 'psql'), args, { logFile: path.join(dir, 'psql.log') })).trim();
}

/**
 * Creates FerretDB's role and database once (idempotent: checked before creating), and (re)installs
 * the index companions of infra/ferretdbIndexes.sql in it.
 */
export async function ensureDatabase(dir: string, port: number, role: string, database: string, log: Log): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(role) || !/^[a-z_][a-z0-9_]*$/.test(database)) {
    throw new Error(`postgres: invalid role/database name "${role}"/"${database}"`);
  }
  if ((await sql(dir, port, { statement: `SELECT 1 FROM pg_roles WHERE rolname = '${role}'` })) !== '1') {
    log(`postgres: creating role ${role}...`);
    await sql(dir, port, { statement: `CREATE ROLE ${role} LOGIN` });
  }
  if ((await sql(dir, port, { statement: `SELECT 1 FROM pg_database WHERE datname = '${database}'` })) !== '1') {
    log(`postgres: creating database ${database}...`);
    await sql(dir, port, { statement: `CREATE DATABASE ${database} OWNER ${role}` });
  }
  await sql(dir, port, { database, file: FERRETDB_INDEXES_SQL });
}

/**
 * Fast shutdown (SIGINT to the postmaster alone: it rolls back open transactions, checkpoints and
 * exits; signalling the whole group would hit its workers directly). SIGKILL after graceMs.
 */
export async function stopPostgresPid(pid: number, pidFile: string, graceMs = 30_000): Promise<void> {
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    // already gone
  }
  if (!(await waitExit(pid, graceMs))) {
    signal(pid, 'SIGKILL');
    await waitExit(pid, 10_000);
  }
  removePidFile(pidFile, pid);
}

/** SIGKILL to the postmaster and every backend at once: a crash, recovered from the WAL on the next start. */
async function killPostgres(pid: number, pidFile: string): Promise<void> {
  signal(pid, 'SIGKILL');
  await waitExit(pid, 10_000);
  removePidFile(pidFile, pid);
}

export function postgresHandle(dir: string, port: number, pid: number, version: string): PostgresHandle {
  const pidFile = postgresPidFile(dir);
  return {
    pid,
    port,
    version,
    stop: () => stopPostgresPid(pid, pidFile),
    kill: () => killPostgres(pid, pidFile),
  };
}

/** Starts (after initdb on first use) a private PostgreSQL cluster in dir, on 127.0.0.1:port only. */
export async function startPostgres(opts: PostgresOptions): Promise<PostgresHandle> {
  const { dir, port, log } = opts;
  const pidFile = postgresPidFile(dir);
  fs.mkdirSync(dir, { recursive: true });
  const running = livePid(pidFile, postgresCmdlineNeedles(dir, port));
  if (running !== undefined) throw new Error(`postgres in ${dir} is already running (pid ${running})`);
  await assertPortsFree('postgres', [port]);
  const binDir = await provisionPostgres(log);
  assertTraversable(dir);
  await initCluster(dir, binDir, log);
  ownedDir(path.join(dir, 'run'));

  const logFile = path.join(dir, 'stdout.log');
  const [cmd, args] = asOwner(path.join(binDir, 'postgres'), ['-D', postgresDataDir(dir), ...serverSettings(dir, port)]);
  const child = await spawnDetached(cmd, args, { cwd: dir, logFile, pidFile });
  const handle = postgresHandle(dir, port, child.pid, postgresVersion(binDir));
  try {
    // Crash recovery after a kill replays the WAL first: allow for it.
    await waitReady(`postgres on 127.0.0.1:${port}`, child.pid, () => postgresAnswers(port), {
      timeoutMs: 60_000,
      logFiles: [logFile],
    });
  } catch (err) {
    if (isAlive(child.pid)) await handle.kill();
    throw err;
  }
  return handle;
}
