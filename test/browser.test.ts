import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { startStack, type TestStack } from './support/stack.js';
import { ROOT } from './support/services.js';
import { launchChromium } from './support/browser.js';

// A page as small as a real integration: connect with the token the backend
// handed over, show each message, acknowledge persistent ones.
const PAGE = `<!doctype html><meta charset="utf-8"><title>push demo</title>
<p id="state">connecting</p><ul id="messages"></ul>
<script>
  const q = new URLSearchParams(location.search);
  const ws = new WebSocket(q.get('node') + '?token=' + encodeURIComponent(q.get('token')));
  ws.onopen = () => { document.getElementById('state').textContent = 'connected'; };
  ws.onclose = (e) => { document.getElementById('state').textContent = 'closed ' + e.code; };
  ws.onmessage = (e) => {
    const f = JSON.parse(e.data);
    if (f.type !== 'message') return;
    const li = document.createElement('li');
    li.dataset.id = f.id;
    li.textContent = f.payload.text;
    document.getElementById('messages').append(li);
    if (f.persistent) ws.send(JSON.stringify({ type: 'ack', ids: [f.id] }));
  };
</script>`;

describe('real browser', () => {
  let s: TestStack;
  let browser: Browser;
  let page: http.Server;
  let pageUrl: string;
  before(async () => {
    s = await startStack();
    page = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE));
    await new Promise<void>((r) => page.listen(0, '127.0.0.1', () => r()));
    pageUrl = `http://127.0.0.1:${(page.address() as { port: number }).port}/`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    page?.close();
    await s?.stop();
  });

  test('headless Chromium connects with a token and shows a message submitted over HTTP', { timeout: 60_000 }, async () => {
    const { token, nodes } = await s.token('judy', 'browser');
    const tab = await browser.newPage();
    await tab.goto(`${pageUrl}?token=${encodeURIComponent(token)}&node=${encodeURIComponent(nodes[0]!)}`);
    await tab.locator('#state', { hasText: 'connected' }).waitFor({ timeout: 15_000 });
    const r = await s.send({ to: { users: ['judy'] }, payload: { text: 'Your order has shipped' } });
    assert.equal(r.status, 202);
    const item = tab.locator(`li[data-id="${r.body.id}"]`);
    await item.waitFor({ timeout: 15_000 });
    assert.equal(await item.textContent(), 'Your order has shipped');
    const dir = path.join(ROOT, 'test-results');
    mkdirSync(dir, { recursive: true });
    await tab.screenshot({ path: path.join(dir, 'browser-message.png') });
    await tab.close();
  });
});
