import type { CommandSpec, Parsed } from './args.js';
import { admin, collector, CliError, EXIT, print, table, type Json, type Target } from './client.js';

/** `send`, `users`, `tasks`: acting on messages, users and broadcasts. */

const taskRow = (x: Json) => [
  x.id,
  x.app,
  x.target.group ? `group ${x.target.group}` : 'all',
  x.state,
  `${x.totals.written}/${x.totals.targeted}`,
  x.totals.acked,
  x.ratePerSecond ?? '-',
  x.createdAt,
];
const TASK_HEAD = ['task', 'app', 'target', 'state', 'written/targeted', 'acked', 'rate', 'created'];

function parsePayload(text: string | undefined): unknown {
  if (text === undefined) return { text: 'test message from the push CLI', at: new Date().toISOString() };
  try {
    return JSON.parse(text);
  } catch {
    return text; // plain text is sent as a JSON string
  }
}

function target(p: Parsed): unknown {
  const users = p.options.user as string[] | undefined;
  const group = p.options.group as string | undefined;
  const all = p.options.all === true;
  const given = [users ? 1 : 0, group ? 1 : 0, all ? 1 : 0].reduce((a, b) => a + b, 0);
  if (given !== 1) throw new CliError('choose exactly one recipient: --user <id,...>, --group <name> or --all (see push send --help)', EXIT.USAGE);
  return users ? { users } : group ? { group } : { all: true };
}

const taskAction = (action: 'pause' | 'resume' | 'stop', summary: string): CommandSpec<Target> => ({
  name: action,
  summary,
  args: [{ name: 'taskId', description: 'task id (from push tasks list, or the taskId of a group/all send)' }],
  async run(t, p) {
    const r = await admin(t, `/v1/tasks/${encodeURIComponent(p.args.taskId!)}/${action}`, { method: 'POST' });
    print(t, r, () => `task ${r.id}: ${r.state}\n`);
  },
});

const SEND_COMMAND: CommandSpec<Target> = {
  name: 'send',
  summary: 'Send a test message through the collector (app key)',
  details: 'Exactly one of --user, --group, --all. The payload is JSON, or plain text sent as a JSON string.',
  options: [
    { name: 'user', type: 'list', description: 'recipient user ids (repeat or comma-separate)', placeholder: '<id,...>' },
    { name: 'group', type: 'string', description: 'a group name' },
    { name: 'all', type: 'boolean', description: 'every connection of the app' },
    { name: 'payload', type: 'string', description: 'JSON payload (default: a small test object)', placeholder: '<json>' },
    { name: 'transient', type: 'boolean', description: 'not stored; only live connections get it' },
    { name: 'ttl', type: 'number', description: 'seconds until it expires', min: 1, placeholder: '<s>' },
    { name: 'rate', type: 'number', description: 'group/all: deliveries per second across the cluster', min: 1, placeholder: '<n/s>' },
    { name: 'idempotency-key', type: 'string', description: 'accept it once per key' },
    { name: 'collapse-key', type: 'string', description: 'a newer message with this key replaces an undelivered older one' },
    { name: 'trace-id', type: 'string', description: 'trace id carried to every hop (default: the message id)' },
  ],
  async run(t, p) {
    const o = p.options;
    const body = {
      to: target(p),
      payload: parsePayload(o.payload as string | undefined),
      ...(o.transient ? { persistent: false } : {}),
      ...(o.ttl !== undefined ? { ttlSeconds: o.ttl } : {}),
      ...(o.rate !== undefined ? { ratePerSecond: o.rate } : {}),
      ...(o['idempotency-key'] ? { idempotencyKey: o['idempotency-key'] } : {}),
      ...(o['collapse-key'] ? { collapseKey: o['collapse-key'] } : {}),
      ...(o['trace-id'] ? { traceId: o['trace-id'] } : {}),
    };
    const r = await collector(t, '/v1/messages', { method: 'POST', body });
    print(t, r, () => `message ${r.id}: ${r.status}${r.duplicate ? ' (duplicate)' : ''}${r.taskId ? `, task ${r.taskId}` : ''}\n`);
  },
};

const USERS_COMMAND: CommandSpec<Target> = {
  name: 'users',
  summary: "A user's presence, or kick a user or device",
  subcommands: [
    {
      name: 'presence',
      summary: "A user's live devices and the nodes holding them (collector, app key)",
      args: [{ name: 'userId', description: 'user id' }],
      async run(t, p) {
        const r = await collector(t, `/v1/users/${encodeURIComponent(p.args.userId!)}/presence`);
        print(
          t,
          r,
          () =>
            `${r.userId}: ${r.online ? 'online' : 'offline'}\n` +
            (r.devices.length
              ? table(
                  ['device', 'node', 'connection', 'route expires'],
                  r.devices.map((d: Json) => [d.deviceId, d.nodeId, d.connId, d.expiresAt]),
                )
              : ''),
        );
      },
    },
    {
      name: 'kick',
      summary: 'Disconnect every device of a user, or one device (close 4009; the SDK does not reconnect)',
      args: [{ name: 'userId', description: 'user id' }],
      options: [
        { name: 'app', type: 'string', description: 'the app of the user (required)' },
        { name: 'device', type: 'string', description: 'only this device' },
        { name: 'reason', type: 'string', description: 'reason sent to the client (default "kicked")' },
      ],
      async run(t, p) {
        if (!p.options.app) throw new CliError('--app is required (see push users kick --help)', EXIT.USAGE);
        const body = {
          app: p.options.app,
          ...(p.options.device ? { deviceId: p.options.device } : {}),
          ...(p.options.reason ? { reason: p.options.reason } : {}),
        };
        const r = await admin(t, `/v1/users/${encodeURIComponent(p.args.userId!)}/kick`, { method: 'POST', body });
        print(t, r, () => `kick ${r.status}: ${r.app}/${r.user}${r.deviceId ? `/${r.deviceId}` : ''}\n`);
      },
    },
  ],
};

const TASKS_COMMAND: CommandSpec<Target> = {
  name: 'tasks',
  summary: 'Broadcast tasks: list, show, pause, resume, stop',
  subcommands: [
    {
      name: 'list',
      summary: 'Recent tasks, newest first',
      options: [
        { name: 'app', type: 'string', description: 'only this app' },
        { name: 'limit', type: 'number', description: 'at most this many (1-500, default 50)', min: 1, max: 500 },
      ],
      async run(t, p) {
        const q = new URLSearchParams();
        if (p.options.app) q.set('app', String(p.options.app));
        if (p.options.limit !== undefined) q.set('limit', String(p.options.limit));
        const r = await admin(t, `/v1/tasks${q.size ? `?${q}` : ''}`);
        print(t, r, () => table(TASK_HEAD, r.tasks.map(taskRow)));
      },
    },
    {
      name: 'show',
      summary: 'One task with its progress per node',
      args: [{ name: 'taskId', description: 'task id' }],
      async run(t, p) {
        const r = await admin(t, `/v1/tasks/${encodeURIComponent(p.args.taskId!)}`);
        print(
          t,
          r,
          () =>
            table(TASK_HEAD, [taskRow(r)]) +
            '\n' +
            table(
              ['node', 'targeted', 'written', 'acked', 'finished', 'missed'],
              r.nodes.map((n: Json) => [n.nodeId, n.targeted, n.written, n.acked, n.finished, n.missed]),
            ) +
            (r.etaSeconds !== null ? `eta ${r.etaSeconds} s\n` : ''),
        );
      },
    },
    taskAction('pause', 'Pause a running task (writes stop within one tick)'),
    taskAction('resume', 'Resume a paused task'),
    taskAction('stop', 'Stop a task for good'),
  ],
};

export function controlCommands(): CommandSpec<Target>[] {
  return [SEND_COMMAND, USERS_COMMAND, TASKS_COMMAND];
}
