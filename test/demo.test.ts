import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createDemoServer } from '../demo/src/demoServer.js';
import { loadConfig } from '../demo/src/config.js';
import { groupKey } from '../store/routeTable.js';
import { startStack, type TestStack } from './support/stack.js';
import { ROOT } from './support/services.js';
import { eventually } from './support/eventually.js';
import { stack as infra } from './support/env.js';

const ARTIFACTS = path.join(ROOT, 'test-results', 'demo');

describe('demo page in headless Chromium', () => {
  let s: TestStack;
  let demo: Awaited<ReturnType<typeof createDemoServer>>;
  let demoUrl: string;
  let browser: Browser;
  let redis: Redis;
  before(async () => {
    s = await startStack();
    demo = await createDemoServer({ host: '127.0.0.1', port: 0, authUrl: s.auth.url, collectorUrl: s.collector.url, apiKey: s.apiKey });
    demoUrl = await demo.listen();
    redis = new Redis(infra.redisUrl, { keyPrefix: s.env.REDIS_KEY_PREFIX, lazyConnect: true });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await demo?.close();
    redis?.disconnect();
    await s?.stop();
  });

  const rowsOf = (tab: Page) =>
    tab.$$eval('#messages tbody tr', (rows) =>
      rows.map((r) => ({ id: (r as HTMLElement).dataset.id!, ack: (r.querySelector('.ack') as HTMLElement).dataset.ack!, text: r.textContent! })),
    );
  const waitRow = (tab: Page, id: string) => tab.locator(`#messages tr[data-id="${id}"]`).waitFor({ timeout: 15_000 });
  const waitState = (tab: Page, state: string) =>
    tab.waitForFunction((st) => document.getElementById('status')!.dataset.state === st, state, { timeout: 15_000 });
  /** Sends through the page's own send panel; resolves with the id it logged. */
  const sendFromPage = async (tab: Page, kind: 'user' | 'group' | 'all', name: string, payload: unknown, persistent = true) => {
    const before = await tab.locator('#sent li.ok').count();
    await tab.selectOption('#target', kind);
    if (kind !== 'all') await tab.fill('#target-name', name);
    await tab.fill('#payload', JSON.stringify(payload));
    await tab.setChecked('#persistent', persistent);
    await tab.click('#send-message');
    await tab.waitForFunction((n) => document.querySelectorAll('#sent li.ok').length > n, before, { timeout: 15_000 });
    const line = (await tab.locator('#sent li.ok').first().textContent())!;
    return line.match(/: ([0-9A-Z]{26})/)![1]!;
  };

  test('connects, shows a unicast, a group and a broadcast message; offline, then every missed persistent message once', { timeout: 120_000 }, async (t) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const tab = await context.newPage();
    const pageErrors: string[] = [];
    tab.on('pageerror', (err) => pageErrors.push(err.message));
    await tab.goto(demoUrl);
    assert.equal(await tab.locator('#state').textContent(), 'idle');
    // No key in anything the page loaded.
    for (const asset of ['/', '/app.js', '/push-sdk.mjs'])
      assert.ok(!(await (await fetch(demoUrl + asset)).text()).includes(s.apiKey), `${asset} leaks the key`);

    await tab.fill('#user', 'dora');
    await tab.fill('#device', 'chrome');
    await tab.fill('#group', 'news');
    await tab.click('#subscribe');
    await tab.click('#connect');
    await waitState(tab, 'connected');
    assert.match((await tab.locator('#detail').textContent())!, /^on /);
    // "subscribed" is not shown by the SDK: wait for the node's entry in the group index.
    await eventually(async () => (await redis.hlen(groupKey(s.app, 'news'))) === 1, { what: 'the group index' });

    const unicast = await sendFromPage(tab, 'user', 'dora', { text: 'just for dora' });
    const group = await sendFromPage(tab, 'group', 'news', { headline: 'group news' });
    const all = await sendFromPage(tab, 'all', '', { text: 'to everyone' }, false);
    for (const id of [unicast, group, all]) await waitRow(tab, id);
    const shown = await rowsOf(tab);
    assert.deepEqual(Object.fromEntries(shown.map((r) => [r.id, r.ack])), { [unicast]: 'acked', [group]: 'acked', [all]: 'none' });
    assert.match(shown.find((r) => r.id === group)!.text, /group news/);
    await tab.screenshot({ path: path.join(ARTIFACTS, '1-connected.png'), fullPage: true });

    // Offline: the page shows the drop, persistent messages sent meanwhile wait in the store.
    await context.setOffline(true);
    await waitState(tab, 'disconnected');
    assert.match((await tab.locator('#detail').textContent())!, /code 1006 \(offline\), waiting for the network/);
    const missed: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const r = await s.send({ to: { users: ['dora'] }, payload: { text: `missed ${i}` } });
      assert.equal(r.status, 202);
      missed.push(r.body.id);
    }
    const transient = await s.send({ to: { users: ['dora'] }, payload: { text: 'transient while offline' }, persistent: false });
    assert.equal(transient.status, 202);
    await tab.screenshot({ path: path.join(ARTIFACTS, '2-offline.png'), fullPage: true });

    const backOnline = Date.now();
    await context.setOffline(false);
    await waitRow(tab, missed[0]!);
    t.diagnostic(`back online -> first missed message shown: ${Date.now() - backOnline} ms`);
    await waitState(tab, 'connected');
    for (const id of missed) await waitRow(tab, id);
    // A marker sent after the reconnect arrives after the resume, so nothing else is still on its way.
    const marker = (await s.send({ to: { users: ['dora'] }, payload: { text: 'marker' } })).body.id as string;
    await waitRow(tab, marker);
    const after = await rowsOf(tab);
    const ids = after.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, 'no message is shown twice');
    assert.deepEqual([...ids].sort(), [unicast, group, all, ...missed, marker].sort(), 'every missed persistent message, and not the transient one');
    assert.ok(after.filter((r) => missed.includes(r.id)).every((r) => r.ack === 'acked'));
    // Page rows are newest first: the missed ones arrived in the order they were sent.
    assert.deepEqual(ids.filter((id) => missed.includes(id)).reverse(), missed);
    assert.equal(await tab.locator('#message-count').textContent(), String(ids.length));
    await tab.screenshot({ path: path.join(ARTIFACTS, '3-back-online.png'), fullPage: true });

    // Upstream from the page, then a clean disconnect.
    await tab.fill('#upstream-payload', '{"action":"typing"}');
    await tab.click('#send-upstream');
    assert.equal(await tab.locator('#upstream-result').textContent(), 'Sent {"action":"typing"}.');
    await tab.click('#disconnect');
    await waitState(tab, 'closed');
    assert.deepEqual(pageErrors, []);
    await context.close();
  });

  test('the dev endpoints relay clear errors; the demo server refuses to run outside development mode', { timeout: 30_000 }, async () => {
    const post = async (url: string, body: string, contentType = 'application/json') => {
      const res = await fetch(demoUrl + url, { method: 'POST', headers: { 'content-type': contentType }, body });
      return { status: res.status, body: (await res.json()) as any };
    };
    assert.deepEqual(await post('/api/token', '{not json'), { status: 400, body: { error: { code: 'INVALID_JSON', message: 'body is not valid JSON' } } });
    assert.equal((await post('/api/token', 'userId=x', 'text/plain')).status, 415);
    assert.equal((await post('/api/token', 'x'.repeat(70_000))).status, 413);
    const noUser = await post('/api/token', '{"deviceId":"d"}');
    assert.equal(noUser.status, 400);
    assert.equal(noUser.body.error.code, 'INVALID_REQUEST');
    const badTarget = await post('/api/messages', '{"to":{},"payload":1}');
    assert.equal(badTarget.status, 400);
    assert.equal(badTarget.body.error.code, 'INVALID_REQUEST');
    const token = await post('/api/token', '{"userId":"dora","deviceId":"d"}');
    assert.equal(token.status, 200);
    assert.deepEqual(Object.keys(token.body).sort(), ['expiresAt', 'nodes', 'token']);
    assert.equal((await fetch(demoUrl + '/nope')).status, 404);

    assert.throws(
      () => loadConfig({ PUSH_MODE: 'production', OPERATOR_KEY: 'secret', DEMO_API_KEY: 'k' }),
      /PUSH_MODE: .*runs only when PUSH_MODE=development/,
    );
    assert.throws(() => loadConfig({}), /PUSH_MODE: .*runs only when PUSH_MODE=development/);
    assert.equal(loadConfig({ PUSH_MODE: 'development' }).port, 8088);
    assert.throws(() => loadConfig({ PUSH_MODE: 'development', DEMO_PORT: 'x' }), /DEMO_PORT/);
  });
});
