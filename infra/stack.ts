/**
 * The shared local stack: `infraUp` provisions and starts what is missing (reusing what runs),
 * `infraDown` stops only what our pid files name, `infraStatus` reports each server.
 */
import fs from 'node:fs';
import { mongoEngine } from './mongo.js';
import { stopPostgresPid } from './postgres.js';
import { livePid, portOpen, seconds, stopPid, type Log } from './process.js';
import { SERVER_NAMES, stackServers, type Alternate, type ServerDef, type ServerName } from './serverDefs.js';

export { SERVER_NAMES, type ServerName } from './serverDefs.js';

export interface ServerStatus {
  name: ServerName;
  address: string;
  state: 'running' | 'stopped' | 'external';
  pid?: number;
  note?: string;
  /** Running, but it is ours from another configuration (a FerretDB of the other backend). */
  other?: boolean;
}

export const consoleLog: Log = (line) => console.log(`[infra] ${line}`);

/** The live pid of ours on this server's port: the configured one, else an alternate (with its note). */
function ourPid(def: ServerDef): { pid: number; alternate?: Alternate } | undefined {
  const pid = livePid(def.pidFile, def.needles);
  if (pid !== undefined) return { pid };
  for (const alternate of def.alternates) {
    const alt = livePid(alternate.pidFile, alternate.needles);
    if (alt !== undefined) return { pid: alt, alternate };
  }
  return undefined;
}

async function statusOf(def: ServerDef): Promise<ServerStatus> {
  const base = { name: def.name, address: def.address };
  const ours = ourPid(def);
  if (ours !== undefined) {
    const answering = await def.answers();
    const note = [ours.alternate?.note ?? def.describe, answering ? '' : 'process alive but not answering'].filter(Boolean).join('; ');
    return { ...base, state: 'running', pid: ours.pid, ...(note ? { note } : {}), ...(ours.alternate ? { other: true } : {}) };
  }
  if (await portOpen(def.port)) {
    return (await def.answers())
      ? { ...base, state: 'external', note: 'not started by infra; left alone' }
      : { ...base, state: 'stopped', note: `port ${def.port} is in use by something that is not ${def.name}` };
  }
  return { ...base, state: 'stopped' };
}

/** Status of every server the configuration uses, plus any of ours still running that it no longer uses. */
export async function infraStatus(): Promise<ServerStatus[]> {
  const defs = stackServers().filter((d) => d.needed || ourPid(d) !== undefined);
  return Promise.all(defs.map(statusOf));
}

function describeFailures(results: PromiseSettledResult<unknown>[], defs: ServerDef[]): string[] {
  return results.flatMap((r, i) => (r.status === 'rejected' ? [`${defs[i]?.name}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`] : []));
}

export interface UpResult {
  /** Servers started by this call. */
  started: ServerName[];
  /** Ours, already running: reused. */
  reused: ServerName[];
  /** Served by something we did not start: used, never stopped by infraDown. */
  external: ServerName[];
}

/**
 * PostgreSQL only serves our FerretDB: not started when the Mongo port is served by something else
 * (an external MongoDB, or our FerretDB of the other backend, reused with a note).
 */
function withoutUnusedPostgres(todo: ServerDef[], statuses: Map<ServerName, ServerStatus>): ServerDef[] {
  const mongo = statuses.get('mongo');
  const ferretOnOurPostgres = todo.some((d) => d.name === 'mongo') || (mongo?.state === 'running' && !mongo.other);
  return ferretOnOurPostgres ? todo : todo.filter((d) => d.name !== 'postgres');
}

/** Starts each server once the one it needs (def.after) has started; the others in parallel. */
function startInOrder(ready: ServerDef[], todo: ServerDef[], log: Log, started: ServerName[]): Promise<PromiseSettledResult<void>[]> {
  const starting = new Map<ServerName, Promise<void>>();
  for (const d of ready) {
    starting.set(
      d.name,
      (async () => {
        if (d.after && todo.some((t) => t.name === d.after)) {
          const dep = starting.get(d.after);
          if (
            !dep ||
            !(await dep.then(
              () => true,
              () => false,
            ))
          )
            throw new Error(`not started: it needs ${d.after}, which did not start`);
        }
        const t0 = Date.now();
        const handle = await d.start(log);
        log(`${d.name} ready at ${d.address} (${seconds(t0)}, pid ${handle.pid})`);
        started.push(d.name);
      })(),
    );
  }
  return Promise.allSettled(ready.map((d) => starting.get(d.name) as Promise<void>));
}

export async function infraUp(opts: { log?: Log } = {}): Promise<UpResult> {
  const log = opts.log ?? consoleLog;
  const defs = stackServers().filter((d) => d.needed);
  const statuses = new Map((await Promise.all(defs.map(statusOf))).map((st) => [st.name, st]));
  const result: UpResult = { started: [], reused: [], external: [] };
  let todo: ServerDef[] = [];
  const blocked: string[] = [];
  for (const def of defs) {
    const st = statuses.get(def.name) as ServerStatus;
    if (st.state === 'running') {
      log(`${def.name} already running at ${def.address} (pid ${st.pid})${st.note ? ` — ${st.note}` : ''}`);
      result.reused.push(def.name);
    } else if (st.state === 'external') {
      log(`${def.name}: ${def.address} is served by a server infra did not start; using it as is (external)`);
      result.external.push(def.name);
    } else if (st.note) {
      blocked.push(`${def.name}: ${st.note}`);
    } else {
      for (const p of def.extraPorts) if (await portOpen(p)) blocked.push(`${def.name}: port ${p} is already in use`);
      todo.push(def);
    }
  }
  if (blocked.length) throw new Error(blocked.join('\n'));
  todo = withoutUnusedPostgres(todo, statuses);
  if (!todo.length) return result;

  const seen = new Set<string>();
  const missing = todo.flatMap((d) => d.tools()).filter((t) => !t.ok && !seen.has(t.tool) && seen.add(t.tool));
  if (missing.length) {
    for (const t of missing) log(`missing ${t.tool} (found: ${t.found}) — ${t.hint}`);
    throw new Error(`missing tools: ${missing.map((t) => t.tool).join(', ')}`);
  }
  const mongo = todo.find((d) => d.name === 'mongo');
  if (mongo) log(`mongo: using ${mongo.describe ?? mongoEngine()}`);

  const provisioned = await Promise.allSettled(todo.map((d) => d.provision(log)));
  const errors = describeFailures(provisioned, todo);
  const ready = todo.filter((_, i) => provisioned[i]?.status === 'fulfilled');
  errors.push(...describeFailures(await startInOrder(ready, todo, log, result.started), ready));
  // The caller still owns what did start (npm start stops it on its way out).
  if (errors.length) throw Object.assign(new Error(errors.join('\n')), { started: result.started });
  return result;
}

async function stopOurs(d: ServerDef, log: Log): Promise<boolean> {
  const ours = ourPid(d);
  if (ours === undefined) {
    fs.rmSync(d.pidFile, { force: true });
    log(`${d.name} not running (nothing of ours to stop)`);
    return false;
  }
  const t0 = Date.now();
  log(`stopping ${d.name} (pid ${ours.pid})...`);
  if (d.name === 'postgres') await stopPostgresPid(ours.pid, d.pidFile);
  else await stopPid(ours.pid, ours.alternate?.pidFile ?? d.pidFile);
  log(`${d.name} stopped (${seconds(t0)})`);
  return true;
}

/** Stops exactly what our pid files name (never external servers); PostgreSQL last, once FerretDB is gone. */
export async function infraDown(opts: { only?: string[]; log?: Log } = {}): Promise<{ stopped: ServerName[] }> {
  const log = opts.log ?? consoleLog;
  const unknown = (opts.only ?? []).filter((n) => !SERVER_NAMES.includes(n as ServerName));
  if (unknown.length) throw new Error(`unknown server(s): ${unknown.join(', ')} (expected ${SERVER_NAMES.join(', ')})`);
  const defs = stackServers().filter((d) => !opts.only?.length || opts.only.includes(d.name));
  const stopped: ServerName[] = [];
  const stopAll = (group: ServerDef[]): Promise<unknown> => Promise.all(group.map(async (d) => (await stopOurs(d, log)) && stopped.push(d.name)));
  await stopAll(defs.filter((d) => d.name !== 'postgres'));
  await stopAll(defs.filter((d) => d.name === 'postgres'));
  return { stopped };
}

// Throwaway instances for fault tests live in privateServers.ts.
export {
  startPrivateKafka,
  startPrivateMongo,
  startPrivatePostgres,
  startPrivateRedis,
  type PrivateControls,
  type PrivateKafka,
  type PrivateMongo,
  type PrivatePostgres,
  type PrivateRedis,
} from './privateServers.js';
