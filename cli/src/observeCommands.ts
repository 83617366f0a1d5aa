import type { CommandSpec } from './args.js';
import { admin, num, print, table, type Json, type Target } from './client.js';

/** `status`, `lag`, `nodes list|drain`, `trace`: reading the cluster. */

function renderStatus(s: Json): string {
  const out: string[] = [];
  out.push(
    'Services\n' +
      table(
        ['service', 'url', 'health', 'ready'],
        s.services.map((x: Json) => [
          x.name,
          x.url,
          x.healthy ? 'up' : `down${x.error ? ` (${x.error})` : ''}`,
          x.ready ? 'ready' : `not ready${x.failing ? ` (${x.failing.join(', ')})` : ''}`,
        ]),
      ),
  );
  out.push(
    'Nodes\n' +
      table(
        ['node', 'connections', 'delivered/s', 'acked/s', 'state'],
        s.nodes.map((n: Json) => [
          n.id,
          n.connections,
          num(n.deliveredPerSecond, 1),
          num(n.ackedPerSecond, 1),
          n.draining ? 'draining' : n.ready ? 'live' : 'not ready',
        ]),
      ),
  );
  out.push(`Consumer lag: ${s.lag.error ? `unavailable (${s.lag.error})` : `${s.lag.total} records`}\n` + lagTable(s.lag.groups));
  const counts =
    Object.entries(s.tasks.counts)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ') || 'none';
  out.push(`Tasks (last ${s.tasks.recent.length}): ${counts}`);
  out.push(`Dead letters: ${s.dlq.entries ?? 'unknown'} not purged; ${s.dlq.records ?? 'unknown'} records on ${s.dlq.topic}`);
  const last = s.throughput.at(-1);
  if (last)
    out.push(
      `Throughput: ${num(last.receivedPerSecond, 1)} received/s, ${num(last.deliveredPerSecond, 1)} delivered/s, latency p50 ${num(last.latencyP50Ms, 1)} ms, p99 ${num(last.latencyP99Ms, 1)} ms`,
    );
  return out.join('\n') + '\n';
}

function lagTable(groups: Json[]): string {
  const rows: unknown[][] = [];
  for (const g of groups)
    for (const t of g.topics) rows.push([g.group, t.topic, g.state, g.members, t.lag, t.partitions.map((p: Json) => `${p.partition}:${p.lag}`).join(' ')]);
  return table(['group', 'topic', 'state', 'members', 'lag', 'per partition'], rows);
}

export function observeCommands(): CommandSpec<Target>[] {
  return [
    {
      name: 'status',
      summary: 'Health of every service and node, connections, delivery rates, consumer lag, tasks, dead letters',
      details: 'Reads GET /v1/admin/status on the admin service (--url).',
      async run(t) {
        const s = await admin(t, '/v1/admin/status');
        print(t, s, () => renderStatus(s));
      },
    },
    {
      name: 'lag',
      summary: 'Consumer group lag per group, topic and partition (committed offset against the end of the topic)',
      options: [{ name: 'group', type: 'string', description: 'only groups whose name contains this text' }],
      async run(t, p) {
        const r = await admin(t, '/v1/admin/lag');
        const filter = p.options.group as string | undefined;
        const groups = filter ? r.groups.filter((g: Json) => g.group.includes(filter)) : r.groups;
        const body = { groups, total: groups.reduce((n: number, g: Json) => n + g.lag, 0) };
        print(t, body, () => lagTable(groups) + `total lag: ${body.total}\n`);
      },
    },
    {
      name: 'nodes',
      summary: 'Pusher nodes: list them, drain one',
      subcommands: [
        {
          name: 'list',
          summary: 'Live pusher nodes with connections and delivery rates',
          async run(t) {
            const s = await admin(t, '/v1/admin/status');
            print(t, { nodes: s.nodes }, () =>
              table(
                ['node', 'url', 'connections', 'delivered/s', 'acked/s', 'state'],
                s.nodes.map((n: Json) => [
                  n.id,
                  n.url,
                  n.connections,
                  num(n.deliveredPerSecond, 1),
                  num(n.ackedPerSecond, 1),
                  n.draining ? 'draining' : n.ready ? 'live' : 'not ready',
                ]),
              ),
            );
          },
        },
        {
          name: 'drain',
          summary: 'Drain a pusher: it refuses new sockets, sends its clients to the other nodes, then exits',
          args: [{ name: 'nodeId', description: 'node id as shown by push nodes list' }],
          async run(t, p) {
            const r = await admin(t, `/v1/admin/nodes/${encodeURIComponent(p.args.nodeId!)}/drain`, { method: 'POST' });
            print(t, r, () => `${r.nodeId}: ${r.status}\n`);
          },
        },
      ],
    },
    {
      name: 'trace',
      summary: 'Where one message is: stored, ingested, dispatched to which nodes, written, acked by which devices, parked, expired',
      args: [{ name: 'messageId', description: 'the id answered by POST /v1/messages' }],
      async run(t, p) {
        const r = await admin(t, `/v1/admin/trace/${encodeURIComponent(p.args.messageId!)}`);
        print(t, r, () => {
          const head =
            `message ${r.messageId}  trace ${r.traceId ?? '-'}  app ${r.app ?? '-'}  ${r.persistent ? 'persistent' : 'transient'}  state: ${r.state}\n` +
            `created ${r.createdAt ?? '-'}  expires ${r.expiresAt ?? '-'}${r.traced ? '' : '  (no trace record: tracing off or expired)'}\n\n`;
          const hops = table(
            ['at', 'hop', 'where', 'detail'],
            r.hops.map((h: Json) => [h.at, h.hop, [h.node, h.user, h.device].filter(Boolean).join(' / '), h.detail]),
          );
          return head + hops;
        });
      },
    },
  ];
}
