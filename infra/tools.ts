import { spawnSync } from 'node:child_process';
import { which } from './process.js';

export interface ToolCheck {
  tool: string;
  ok: boolean;
  found: string;
  hint: string;
}

function versionOutput(cmd: string, args: string[]): string | undefined {
  if (!which(cmd)) return undefined;
  const res = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  return `${res.stdout ?? ''}${res.stderr ?? ''}`;
}

/** `java -version` prints e.g. `openjdk version "17.0.15"` (or `"1.8.0_392"` for Java 8). */
export function checkJava(): ToolCheck {
  const out = versionOutput('java', ['-version']);
  const m = out?.match(/version "(\d+)(?:\.(\d+))?/);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : 0;
  return {
    tool: 'java >= 17',
    ok: major >= 17,
    found: out === undefined ? 'not found' : m ? `java ${major}` : 'unrecognised `java -version`',
    hint: 'apt-get install openjdk-17-jre-headless (or any JDK/JRE >= 17 on PATH)',
  };
}

export function checkMaven(): ToolCheck {
  const path = which('mvn');
  return {
    tool: 'mvn',
    ok: path !== undefined,
    found: path ?? 'not found',
    hint: 'apt-get install maven (only needed once, to fetch the Kafka jars)',
  };
}

export function checkGo(): ToolCheck {
  const out = versionOutput('go', ['version']);
  const m = out?.match(/go(\d+)\.(\d+)/);
  const ok = m !== null && m !== undefined && (Number(m[1]) > 1 || Number(m[2]) >= 21);
  return {
    tool: 'go >= 1.21',
    ok,
    found: out === undefined ? 'not found' : m ? `go ${m[1]}.${m[2]}` : 'unrecognised `go version`',
    hint: 'Go >= 1.21 is needed to build FerretDB: apt-get install golang (bookworm-backports) or https://go.dev/dl/ (only needed once; alternatively put mongod on PATH)',
  };
}

export function canAptInstall(): boolean {
  return process.getuid?.() === 0 && which('apt-get') !== undefined;
}

export function checkRedisServer(): ToolCheck {
  const path = which('redis-server');
  const installable = !path && canAptInstall();
  return {
    tool: 'redis-server',
    ok: path !== undefined || installable,
    found: path ?? (installable ? 'not found (will apt-get install redis-server)' : 'not found'),
    hint: 'apt-get install redis-server (as root), or put a redis-server >= 6 on PATH',
  };
}
