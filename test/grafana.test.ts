import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './support/services.js';

const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'infra/grafana/push-dashboard.json'), 'utf8'));
const sources = ['collector/src', 'dispatcher/src', 'admin/src', 'pusher/src', 'platform', 'store', 'api']
  .flatMap((dir) => readdirSync(path.join(ROOT, dir), { recursive: true }).map((f) => path.join(ROOT, dir, String(f))))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .map((f) => readFileSync(f, 'utf8'))
  .join('\n');

test('every metric the Grafana dashboard queries is registered by a service', () => {
  const exprs: string[] = dashboard.panels.flatMap((p: any) => p.targets.map((t: any) => t.expr));
  const names = new Set(exprs.flatMap((e) => [...e.matchAll(/\bpush_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))));
  assert.ok(names.size >= 15, `${names.size} metrics`);
  for (const name of names) assert.match(sources, new RegExp(`name: '${name}'|'${name}'`), `${name} is not registered anywhere`);
  for (const p of dashboard.panels) assert.equal(p.datasource.uid, '${datasource}', `${p.title} uses the datasource variable`);
});

test('Prometheus scrapes every service of docker-compose.yml on its port; the add-on mounts the dashboard', () => {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { ports?: string[] }> };
  const prom = parse(readFileSync(path.join(ROOT, 'infra/grafana/prometheus.yml'), 'utf8')) as {
    scrape_configs: { static_configs: { targets: string[] }[] }[];
  };
  const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets)).sort();
  const expected = ['auth', 'collector', 'admin', 'dispatcher', 'pusher']
    .map((name) => `${name}:${compose.services[name]!.ports![0]!.split(':').at(-1)}`)
    .sort();
  assert.deepEqual(targets, expected);
  const addon = parse(readFileSync(path.join(ROOT, 'infra/grafana/docker-compose.observability.yml'), 'utf8')) as {
    services: Record<string, { volumes?: string[] }>;
  };
  assert.ok(addon.services.grafana!.volumes!.some((v) => v.startsWith('./infra/grafana/push-dashboard.json:')));
});
