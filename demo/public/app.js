/* global document, fetch */
// The demo page: the SDK's public build and nothing else. Tokens and sends go
// through the demo server (/api/token, /api/messages), which holds the API key.
import { PushClient } from '/push-sdk.mjs';

const $ = (id) => document.getElementById(id);
const groups = new Set();
// Each tab is its own device: a pusher keeps one socket per device, so two tabs with the same
// device id would replace each other (close 4009).
$('device').value = `browser-${Math.random().toString(36).slice(2, 6)}`;
let client;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

function log(list, text, kind = '') {
  const time = el('time', { textContent: new Date().toLocaleTimeString() });
  $(list).prepend(el('li', { className: kind }, time, text));
  while ($(list).children.length > 200) $(list).lastChild.remove();
}

async function postJson(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(answer.error ? `${res.status} ${answer.error.code}: ${answer.error.message}` : `HTTP ${res.status}`);
  return answer;
}

function setState(state, detail) {
  $('status').dataset.state = state;
  $('state').textContent = state;
  if (detail !== undefined) $('detail').textContent = detail;
  const active = state !== 'idle' && state !== 'closed';
  $('connect').disabled = active;
  $('disconnect').disabled = !active;
  $('user').disabled = $('device').disabled = active;
}

function setAck(cell, state) {
  cell.dataset.ack = state;
  cell.replaceChildren(state === 'acked' ? 'acked' : state === 'none' ? 'not needed' : 'pending');
}

function showMessage(m) {
  const ack = el('td', { className: 'ack' });
  const kind = el('span', { className: `tag ${m.persistent ? 'persistent' : ''}`, textContent: m.persistent ? 'persistent' : 'transient' });
  const row = el(
    'tr',
    {},
    el('td', { textContent: new Date().toLocaleTimeString() }),
    el('td', { className: 'id', textContent: m.id }),
    el('td', {}, kind),
    el('td', { className: 'payload', textContent: JSON.stringify(m.payload) }),
    ack,
  );
  row.dataset.id = m.id;
  $('messages').tBodies[0].prepend(row);
  $('message-count').textContent = String($('messages').tBodies[0].rows.length);
  if (!m.persistent) return setAck(ack, 'none');
  if ($('auto-ack').checked) {
    client.ack(m.id); // batched by the SDK: sent within ackBatchMs, or after the next reconnect
    return setAck(ack, 'acked');
  }
  setAck(ack, 'pending');
  const button = el('button', { type: 'button', className: 'small', textContent: 'Ack' });
  button.addEventListener('click', () => {
    client?.ack(m.id);
    setAck(ack, 'acked');
  });
  ack.append(' ', button);
}

function renderGroups() {
  $('group-list').replaceChildren(
    ...[...groups].map((g) => {
      const remove = el('button', { type: 'button', title: `unsubscribe from ${g}`, textContent: '×' });
      remove.addEventListener('click', () => {
        groups.delete(g);
        client?.unsubscribe(g);
        log('events', `unsubscribed from ${g}`);
        renderGroups();
      });
      const chip = el('li', {}, g, remove);
      chip.dataset.group = g;
      return chip;
    }),
  );
}

$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const userId = $('user').value.trim();
  const deviceId = $('device').value.trim();
  const getToken = () => postJson('/api/token', { userId, deviceId });
  setState('connecting', 'getting a token');
  let grant;
  try {
    grant = await getToken();
  } catch (err) {
    log('events', `token refused: ${err.message}`, 'error');
    return setState('closed', 'no token');
  }
  // autoAck off: the page acks itself, so that it can show the ack state (or leave it to a button).
  client = new PushClient({ token: grant.token, nodes: grant.nodes, getToken, autoAck: false });
  client.on('state', ({ state }) => setState(state));
  client.on('connecting', ({ url, attempt }) => log('events', `connecting to ${url} (attempt ${attempt + 1})`));
  client.on('connected', ({ nodeId, connId }) => {
    setState('connected', `on ${nodeId}`);
    log('events', `connected to ${nodeId} as ${connId}`, 'ok');
  });
  client.on('disconnected', ({ code, reason, willReconnect, delayMs }) => {
    const retry = !willReconnect ? 'not retrying' : delayMs < 0 ? 'waiting for the network' : `retrying in ${delayMs} ms`;
    $('detail').textContent = `code ${code}${reason ? ` (${reason})` : ''}, ${retry}`;
    log('events', `disconnected: code ${code}${reason ? ` ${reason}` : ''}; ${retry}`, 'error');
  });
  client.on('error', ({ code, message }) => log('events', `error ${code}: ${message}`, 'error'));
  client.on('kicked', ({ reason }) => log('events', `kicked: ${reason}`, 'error'));
  client.on('message', showMessage);
  for (const g of groups) client.subscribe(g);
  client.connect();
});

$('disconnect').addEventListener('click', () => {
  client?.close();
  client = undefined;
  setState('closed', 'disconnected by you');
  log('events', 'closed by you');
});

$('groups').addEventListener('submit', (e) => {
  e.preventDefault();
  const g = $('group').value.trim();
  if (!g || !$('group').checkValidity()) return log('events', `"${g}" is not a group name (1-128 of A-Z a-z 0-9 . _ : -)`, 'error');
  groups.add(g);
  client?.subscribe(g);
  log('events', `subscribed to ${g}${client ? '' : ' (from the next connect)'}`);
  $('group').value = '';
  renderGroups();
});

$('upstream').addEventListener('submit', (e) => {
  e.preventDefault();
  let payload;
  try {
    payload = JSON.parse($('upstream-payload').value);
  } catch {
    payload = $('upstream-payload').value; // plain text goes up as a JSON string
  }
  if (!client) return ($('upstream-result').textContent = 'Connect first.');
  const connected = client.state === 'connected';
  const taken = client.send(payload);
  $('upstream-result').textContent = !taken
    ? 'Dropped: the send queue is full or the client is closed.'
    : connected
      ? `Sent ${JSON.stringify(payload)}.`
      : 'Queued until connected.';
});

$('target').addEventListener('change', () => {
  const kind = $('target').value;
  $('target-name-label').hidden = kind === 'all';
  if (kind === 'group' && $('target-name').value === $('user').value) $('target-name').value = [...groups][0] ?? 'news';
  if (kind === 'user') $('target-name').value = $('user').value;
});

$('send').addEventListener('submit', async (e) => {
  e.preventDefault();
  const kind = $('target').value;
  const name = $('target-name').value.trim();
  let payload;
  try {
    payload = JSON.parse($('payload').value);
  } catch {
    return log('sent', 'the payload is not valid JSON', 'error');
  }
  const to = kind === 'all' ? { all: true } : kind === 'group' ? { group: name } : { users: [name] };
  const persistent = $('persistent').checked;
  try {
    const r = await postJson('/api/messages', { to, payload, persistent });
    const target = kind === 'all' ? 'everyone' : `${kind} ${name}`;
    log('sent', `${persistent ? 'persistent' : 'transient'} to ${target}: ${r.id}${r.taskId ? ` (task ${r.taskId})` : ''}`, 'ok');
  } catch (err) {
    log('sent', err.message, 'error');
  }
});

setState('idle', 'not connected');
