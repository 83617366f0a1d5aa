import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { infraPath } from '../../infra/paths.js';

/**
 * Schemathesis (an OpenAPI fuzzer from PyPI) in a virtualenv of its own under
 * .infra/, installed by the tests the first time they need it (so a fresh
 * machine or CI needs only python3 with venv) and reused afterwards. The
 * version is pinned: a new release may add checks and change what passes.
 */
export const SCHEMATHESIS_VERSION = '4.32.5';

const venvDir = infraPath(`schemathesis-${SCHEMATHESIS_VERSION}`);
const binOf = (dir: string) => `${dir}/bin/schemathesis`;
const markerOf = (dir: string) => `${dir}/.installed`;

/** Creates the venv and installs the pinned schemathesis once; returns the path of its CLI. */
export async function ensureSchemathesis(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  if (existsSync(binOf(venvDir)) && existsSync(markerOf(venvDir)) && readFileSync(markerOf(venvDir), 'utf8').trim() === SCHEMATHESIS_VERSION) {
    // A venv whose interpreter went away (python3 upgraded or removed) is rebuilt rather than failing later.
    if (spawnSync(binOf(venvDir), ['--version'], { encoding: 'utf8', timeout: 60_000 }).status === 0) return binOf(venvDir);
    log(`[schemathesis] ${venvDir} no longer runs; reinstalling`);
  }
  const python = process.env.PYTHON ?? 'python3';
  const probe = spawnSync(python, ['-c', 'import venv, ensurepip'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(
      `${python} with venv and ensurepip is needed for the HTTP fuzzer (Debian: apt-get install python3-venv): ${probe.error?.message ?? probe.stderr}`,
    );
  }
  // The marker is written last: a venv without it (an interrupted install) is rebuilt from scratch.
  // Built in place, not renamed: a venv's scripts carry its absolute path in their #! line.
  rmSync(venvDir, { recursive: true, force: true });
  log(`[schemathesis] first use: installing schemathesis ${SCHEMATHESIS_VERSION} from PyPI into ${venvDir}`);
  try {
    await run(python, ['-m', 'venv', venvDir], log);
    await run(
      `${venvDir}/bin/python`,
      ['-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'off', `schemathesis==${SCHEMATHESIS_VERSION}`],
      log,
    );
    writeFileSync(markerOf(venvDir), `${SCHEMATHESIS_VERSION}\n`);
  } catch (err) {
    rmSync(venvDir, { recursive: true, force: true });
    throw err;
  }
  log(`[schemathesis] installed`);
  return binOf(venvDir);
}

/** Runs a command, echoing each output line through `log` (pip's progress on first install). */
function run(cmd: string, args: string[], log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const echo = (d: Buffer) =>
      d
        .toString()
        .split('\n')
        .filter(Boolean)
        .forEach((l) => log(`[schemathesis]   ${l}`));
    child.stdout.on('data', echo);
    child.stderr.on('data', echo);
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

export interface FuzzRun {
  /** The exit code of `schemathesis run` (0: every check passed), or the signal that ended it. */
  exit: number | string;
  output: string;
  /** Test cases schemathesis generated and sent (from its summary), or -1 when the summary is missing. */
  testCases: number;
  /** Operations it tested (from its summary), or -1. */
  operations: number;
  seconds: number;
  timedOut: boolean;
}

export interface FuzzOptions {
  spec: string;
  url: string;
  /** Regular expression of the paths to test (the spec describes every service). */
  pathRegex: string;
  headers?: Record<string, string>;
  checks: string[];
  maxExamples: number;
  /** Schemathesis' own budget for the run (it stops generating when spent). */
  maxSeconds: number;
  /** Hard wall-clock bound: the run is killed, and counted as failed, past it. */
  killAfterMs: number;
  seed?: number;
  /** `[[operations]]` tables of schemathesis.toml (per-operation headers and checks) for this run. */
  operations?: string;
  extraArgs?: string[];
}

const ALL_CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
  'negative_data_rejection',
  'positive_data_acceptance',
  'missing_required_header',
  'unsupported_method',
  'allow_header_conformance',
  'use_after_free',
  'ensure_resource_availability',
  'ignored_auth',
  'object_level_authorization',
];

/**
 * The run's schemathesis.toml: headers and checks go in the file, not on the
 * command line, because command-line checks override the per-operation ones.
 */
function configText(o: FuzzOptions): string {
  const toml = (v: string) => JSON.stringify(v);
  const headers = Object.entries(o.headers ?? {}).map(([k, v]) => `${toml(k)} = ${toml(v)}`);
  return [
    `headers = { ${headers.join(', ')} }`,
    '[checks]',
    ...ALL_CHECKS.map((c) => `${c}.enabled = ${o.checks.includes(c)}`),
    // A body over a byte limit (auth's 4 KiB, an app's maxPayloadBytes) is refused 413 whatever its
    // fields: JSON Schema cannot express a size in bytes, so 413 is a right answer to any generated body.
    'negative_data_rejection.expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]',
    'positive_data_acceptance.expected-statuses = ["2xx", "3xx", 401, 403, 404, 409, 413, 429, "5xx"]',
    o.operations ?? '',
    '',
  ].join('\n');
}

/** `schemathesis run` against one running service, bounded in examples and in time. */
export async function runSchemathesis(bin: string, o: FuzzOptions): Promise<FuzzRun> {
  const configFile = path.join(tmpdir(), `schemathesis-${process.pid}-${Date.now()}.toml`);
  writeFileSync(configFile, configText(o));
  const args = [
    '--config-file',
    configFile,
    'run',
    o.spec,
    '--url',
    o.url,
    '--include-path-regex',
    o.pathRegex,
    '--max-examples',
    String(o.maxExamples),
    '--max-time',
    String(o.maxSeconds),
    '--request-timeout',
    '10',
    // One worker: CPython 3.11's ast module is not thread-safe (hypothesis describes filters with it), and
    // schemathesis' threads then fail with "AST constructor recursion depth mismatch".
    '--workers',
    '1',
    '--generation-database',
    'none',
    '--no-color',
    ...(o.seed === undefined ? [] : ['--seed', String(o.seed)]),
    ...(o.extraArgs ?? []),
  ];
  const started = Date.now();
  // Its caches (.schemathesis/, .hypothesis/) go under .infra/, not into the work tree.
  const cwd = infraPath('schemathesis-work');
  mkdirSync(cwd, { recursive: true });
  const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', SCHEMATHESIS_TELEMETRY: 'false' } });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let timedOut = false;
  const killer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, o.killAfterMs);
  const exit = await new Promise<number | string>((resolve) => {
    child.once('error', (err) => {
      output += `\ncannot run ${bin}: ${err.message}`;
      resolve('spawn-error');
    });
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  clearTimeout(killer);
  rmSync(configFile, { force: true });
  const count = (re: RegExp) => Number(re.exec(output)?.[1] ?? -1);
  return {
    exit,
    output,
    testCases: count(/Test cases:\s*(\d+) generated/),
    operations: count(/Tested:\s*(\d+)/),
    seconds: (Date.now() - started) / 1000,
    timedOut,
  };
}
