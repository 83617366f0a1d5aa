/** limit (c): redis-benchmark against the shared Redis (a spare db number): SET, GET, HSET, one at a time and pipelined (-P 16). */
import { stack as infra } from '../../test/support/env.js';
import { runTool } from './runTool.js';

interface RedisRow {
  rps: number;
  p50Ms: number;
  p99Ms: number;
}
export type RedisResult = { requests: number; db: number; clients: number } & Record<'single' | 'pipelined16', Record<'SET' | 'GET' | 'HSET', RedisRow>>;

export async function redisLimit(requests: number, log: (l: string) => void): Promise<RedisResult> {
  const u = new URL(infra.redisUrl);
  const host = u.hostname || '127.0.0.1';
  const port = u.port || '6379';
  const db = 13;
  const bench = async (pipeline: number, n: number) => {
    const out = await runTool(
      'redis-benchmark',
      ['-h', host, '-p', port, '--dbnum', String(db), '-c', '50', '-n', String(n), '-P', String(pipeline), '-t', 'set,get,hset', '--csv'],
      120_000,
    );
    const rows: Partial<Record<'SET' | 'GET' | 'HSET', RedisRow>> = {};
    const lines = out
      .trim()
      .split('\n')
      .map((l) => l.split(',').map((s) => s.replace(/"/g, '')));
    const head = lines[0] ?? [];
    for (const l of lines.slice(1)) {
      const name = l[0] as 'SET' | 'GET' | 'HSET';
      if (!['SET', 'GET', 'HSET'].includes(name)) continue;
      rows[name] = {
        rps: Math.round(Number(l[head.indexOf('rps')])),
        p50Ms: Number(l[head.indexOf('p50_latency_ms')]),
        p99Ms: Number(l[head.indexOf('p99_latency_ms')]),
      };
    }
    if (!rows.SET || !rows.GET || !rows.HSET) throw new Error(`cannot read redis-benchmark output: ${out.slice(0, 300)}`);
    return rows as Record<'SET' | 'GET' | 'HSET', RedisRow>;
  };
  try {
    log(`limit/redis: redis-benchmark -n ${requests} (SET, GET, HSET), then -P 16 -n ${requests * 5}`);
    const single = await bench(1, requests);
    const pipelined16 = await bench(16, requests * 5);
    log(
      `limit/redis: SET ${single.SET.rps}/s, GET ${single.GET.rps}/s, HSET ${single.HSET.rps}/s; pipelined x16: SET ${pipelined16.SET.rps}/s, GET ${pipelined16.GET.rps}/s, HSET ${pipelined16.HSET.rps}/s`,
    );
    return { requests, db, clients: 50, single, pipelined16 };
  } finally {
    // redis-benchmark without -r uses these fixed keys; remove them from the spare db.
    await runTool('redis-cli', ['-h', host, '-p', port, '-n', String(db), 'DEL', 'key:__rand_int__', 'myhash'], 10_000).catch(() => undefined);
  }
}
