/* global document, Node, fetch, sessionStorage, setInterval, clearInterval */
// Operator dashboard: polls GET /v1/admin/status with the operator key kept in
// sessionStorage. Plain DOM and SVG; every value goes in as text, never as HTML.
(() => {
  'use strict';
  const KEY = 'pushOperatorKey';
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let timer;

  const el = (tag, attrs = {}, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };
  const fmt = (n, digits = 0) => (n === null || n === undefined ? '–' : Number(n).toFixed(digits));
  const fill = (table, rows) => table.querySelector('tbody').replaceChildren(...rows);

  async function api(path, method = 'GET') {
    const res = await fetch(path, { method, headers: { authorization: `Bearer ${sessionStorage.getItem(KEY)}` } });
    const body = await res.json().catch(() => ({}));
    if (res.status === 401) {
      logout('the operator key was refused');
      throw new Error('unauthorized');
    }
    if (!res.ok) throw Object.assign(new Error(body.error?.message ?? `HTTP ${res.status}`), { status: res.status });
    return body;
  }

  function chart(svg, series, lines) {
    const w = 600,
      h = 140,
      pad = 4;
    const max = Math.max(1, ...series.flatMap((p) => lines.map((l) => p[l.field] ?? 0)));
    const kids = [];
    for (const l of lines) {
      const pts = series.map((p, i) => {
        const x = series.length > 1 ? (i / (series.length - 1)) * (w - 2 * pad) + pad : w / 2;
        const y = h - pad - ((p[l.field] ?? 0) / max) * (h - 2 * pad);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      });
      const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
      line.setAttribute('points', pts.join(' '));
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', l.color);
      line.setAttribute('stroke-width', '2');
      line.setAttribute('vector-effect', 'non-scaling-stroke');
      kids.push(line);
    }
    svg.replaceChildren(...kids);
    const last = series.at(-1) ?? {};
    return `max ${fmt(max, 1)} · ` + lines.map((l) => `${l.label} ${fmt(last[l.field], 1)}`).join(' · ');
  }

  function render(s) {
    fill(
      $('services'),
      s.services.map((x) =>
        el(
          'tr',
          { 'data-service': x.name },
          el('td', {}, x.name),
          el('td', {}, x.url),
          el('td', { class: x.healthy ? 'ok' : 'bad' }, x.healthy ? 'up' : 'down'),
          el('td', { class: x.ready ? 'ok' : 'bad' }, x.ready ? 'ready' : `not ready${x.failing ? ` (${x.failing.join(', ')})` : ''}`),
        ),
      ),
    );
    fill(
      $('nodes'),
      s.nodes.map((n) =>
        el(
          'tr',
          { 'data-node': n.id },
          el('td', {}, n.id),
          el('td', { class: 'connections' }, fmt(n.connections)),
          el('td', {}, fmt(n.deliveredPerSecond, 1)),
          el('td', {}, fmt(n.ackedPerSecond, 1)),
          el('td', { class: n.draining || !n.ready ? 'bad' : 'ok' }, n.draining ? 'draining' : n.ready ? 'live' : 'not ready'),
        ),
      ),
    );
    const lagRows = [];
    for (const g of s.lag.groups)
      for (const t of g.topics)
        lagRows.push(
          el(
            'tr',
            { 'data-group': g.group },
            el('td', {}, g.group),
            el('td', {}, t.topic),
            el('td', {}, g.state),
            el('td', {}, g.members),
            el('td', { class: t.lag > 1000 ? 'bad' : '' }, t.lag),
          ),
        );
    if (s.lag.error) lagRows.push(el('tr', {}, el('td', { class: 'bad', colspan: '5' }, s.lag.error)));
    fill($('lag'), lagRows);
    fill(
      $('tasks'),
      s.tasks.recent.map((t) => {
        const pct = t.totals.targeted > 0 ? Math.min(100, (100 * t.totals.written) / t.totals.targeted) : t.state === 'done' ? 100 : 0;
        const bar = el('span', { class: 'bar', title: `${t.totals.written}/${t.totals.targeted} written, ${t.totals.acked} acked` }, el('span'));
        bar.firstChild.style.width = `${pct.toFixed(1)}%`;
        const live = t.state === 'running' || t.state === 'paused';
        return el(
          'tr',
          { 'data-task': t.id, 'data-state': t.state },
          el('td', {}, t.id),
          el('td', {}, t.target.group ? `group ${t.target.group}` : 'all'),
          // unknown / expired: the record says running but nothing will progress (note says why).
          el('td', { class: t.note ? 'state bad' : 'state', title: t.note ?? '' }, t.state, t.recordedState ? ` (recorded ${t.recordedState})` : ''),
          el('td', {}, bar, ` ${t.totals.written}/${t.totals.targeted}`, t.ratePerSecond ? ` @${t.ratePerSecond}/s` : ''),
          el('td', {}, live ? el('button', { class: 'stop', onclick: () => act(`/v1/tasks/${t.id}/stop`, `stop task ${t.id}`) }, 'stop') : ''),
        );
      }),
    );
    $('dlq-topic').textContent = s.dlq.topic;
    $('dlq-size').textContent = s.dlq.records === null ? 'unknown' : String(s.dlq.records);
    $('dlq-entries').textContent = s.dlq.entries === null || s.dlq.entries === undefined ? 'unknown' : String(s.dlq.entries);
    $('throughput-legend').textContent = chart($('throughput'), s.throughput, [
      { field: 'receivedPerSecond', label: 'received', color: '#888' },
      { field: 'forwardedPerSecond', label: 'dispatched', color: '#f39c12' },
      { field: 'deliveredPerSecond', label: 'delivered', color: '#3a6ff7' },
      { field: 'ackedPerSecond', label: 'acked', color: '#1b7f3b' },
    ]);
    $('latency-legend').textContent = chart($('latency'), s.throughput, [
      { field: 'latencyP50Ms', label: 'p50', color: '#3a6ff7' },
      { field: 'latencyP99Ms', label: 'p99', color: '#b3261e' },
    ]);
    $('updated').textContent = `updated ${new Date(s.at).toLocaleTimeString()}`;
  }

  function renderReplays(list) {
    fill(
      $('replays'),
      list.map((r) =>
        el(
          'tr',
          { 'data-replay': r.id },
          el('td', {}, r.id),
          el('td', {}, r.topic),
          el('td', {}, r.state),
          el('td', {}, `${r.progress?.replayed ?? 0} / ${r.progress?.matched ?? 0}`),
          el('td', {}, r.state === 'running' ? el('button', { onclick: () => act(`/v1/admin/replays/${r.id}/stop`, `stop replay ${r.id}`) }, 'stop') : ''),
        ),
      ),
    );
  }

  async function act(path, what) {
    try {
      await api(path, 'POST');
      $('error').textContent = '';
    } catch (err) {
      $('error').textContent = `${what}: ${err.message}`;
    }
    await poll();
  }

  async function poll() {
    try {
      render(await api('/v1/admin/status'));
      $('error').textContent = '';
    } catch (err) {
      if (err.message !== 'unauthorized') $('error').textContent = `status: ${err.message}`;
      return;
    }
    try {
      renderReplays((await api('/v1/admin/replays')).replays ?? []);
    } catch (err) {
      fill($('replays'), [el('tr', {}, el('td', { class: 'muted', colspan: '5' }, err.status === 404 ? 'replay API not available' : err.message))]);
    }
  }

  function start() {
    $('login').hidden = true;
    $('board').hidden = false;
    $('logout').hidden = false;
    clearInterval(timer);
    void poll();
    timer = setInterval(() => void poll(), POLL_MS);
  }

  function logout(message = '') {
    sessionStorage.removeItem(KEY);
    clearInterval(timer);
    $('login').hidden = false;
    $('board').hidden = true;
    $('logout').hidden = true;
    $('error').textContent = message;
  }

  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $('key').value);
    $('key').value = '';
    start();
  });
  $('logout').addEventListener('click', () => logout());
  if (sessionStorage.getItem(KEY)) start();
})();
