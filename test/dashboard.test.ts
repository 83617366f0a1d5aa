import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { connectClient, startStack, wsOf, type TestClient, type TestStack } from './support/stack.js';
import { ROOT } from './support/services.js';
import { launchChromium } from './support/browser.js';

describe('operator dashboard in headless Chromium', () => {
  let s: TestStack;
  let browser: Browser;
  const clients: TestClient[] = [];
  before(async () => {
    s = await startStack({ pushers: 1, env: { STATUS_SAMPLE_MS: '500' } });
    browser = await launchChromium();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await browser?.close();
    await s?.stop();
  });

  test('a wrong key is refused with a message and the board stays hidden', { timeout: 30_000 }, async () => {
    const tab = await browser.newPage();
    await tab.goto(`${s.admin.url}/dashboard`);
    await tab.fill('#key', 'not-the-key');
    await tab.click('#login button');
    await tab.locator('#error', { hasText: 'the operator key was refused' }).waitFor({ timeout: 10_000 });
    assert.equal(await tab.locator('#board').isHidden(), true);
    assert.equal(await tab.evaluate(() => sessionStorage.getItem('pushOperatorKey')), null);
    await tab.close();
  });

  test('shows the node with its connections and a running rate-limited broadcast; stop stops it', { timeout: 90_000 }, async () => {
    const node = s.pushers[0]!;
    const nodeId = `${s.env.KAFKA_TOPIC_PREFIX!.replace(/\.$/, '')}-p1`;
    for (let i = 0; i < 30; i++) clients.push(await connectClient(wsOf(node.url), (await s.token(`viewer${i}`, 'd')).token));
    // 30 connections at 3 per second: about 10 s of work, time enough to press stop.
    const sent = await s.send({ to: { all: true }, payload: 'slow news', persistent: false, ratePerSecond: 3 });
    assert.equal(sent.status, 202);
    const taskId = sent.body.taskId as string;

    const tab = await browser.newPage();
    await tab.goto(`${s.admin.url}/dashboard`);
    await tab.fill('#key', 'operator-key');
    await tab.click('#login button');
    const nodeRow = tab.locator(`#nodes tr[data-node="${nodeId}"]`);
    await nodeRow.locator('td.connections', { hasText: /^30$/ }).waitFor({ timeout: 15_000 });
    assert.match((await nodeRow.textContent()) ?? '', /live/);
    const taskRow = tab.locator(`#tasks tr[data-task="${taskId}"]`);
    await tab.locator(`#tasks tr[data-task="${taskId}"][data-state="running"]`).waitFor({ timeout: 15_000 });
    assert.match((await taskRow.textContent()) ?? '', /all.*running.*@3\/s/);
    // The consumer lag table lists the dispatcher's group.
    await tab.locator(`#lag tr[data-group="${s.env.KAFKA_TOPIC_PREFIX}push-dispatcher"]`).waitFor({ timeout: 15_000 });
    // Charts: four throughput lines and two latency lines, drawn from the admin service's samples.
    await tab.locator('#throughput polyline').nth(3).waitFor({ state: 'attached', timeout: 15_000 });
    assert.equal(await tab.locator('#throughput polyline').count(), 4);
    assert.equal(await tab.locator('#latency polyline').count(), 2);
    assert.match((await tab.locator('#throughput-legend').textContent()) ?? '', /received [\d.]+ · dispatched [\d.]+ · delivered [\d.]+ · acked [\d.]+/);
    const dir = path.join(ROOT, 'test-results');
    mkdirSync(dir, { recursive: true });
    await tab.screenshot({ path: path.join(dir, 'dashboard-running-task.png'), fullPage: true });

    await taskRow.locator('button.stop').click();
    await tab.locator(`#tasks tr[data-task="${taskId}"][data-state="stopped"]`).waitFor({ timeout: 10_000 });
    const res = await fetch(`${s.admin.url}/v1/tasks/${taskId}`, { headers: { authorization: 'Bearer operator-key' } });
    const task = (await res.json()) as { state: string; totals: { written: number } };
    assert.equal(task.state, 'stopped');
    assert.ok(task.totals.written < 30, `stopped before every connection was written: ${task.totals.written}`);
    assert.equal(await taskRow.locator('button.stop').count(), 0, 'a stopped task has no stop button');
    // The key survives a reload (sessionStorage) and the board comes back without asking.
    await tab.reload();
    await tab.locator(`#nodes tr[data-node="${nodeId}"]`).waitFor({ timeout: 10_000 });
    await tab.close();
  });
});
