import type { CommandSpec, Parsed } from './args.js';
import { admin, CliError, EXIT, print, table, type Json, type Target } from './client.js';

/** `replay`, `dlq`: recovering from incidents. */

const TOPICS: Record<string, string> = { ingest: 'push.ingest', 'push.ingest': 'push.ingest', events: 'push.events', 'push.events': 'push.events' };

/** ISO date or ms since epoch, as the replay API takes them. */
function timeArg(name: string, value: unknown): string | number {
  const s = String(value);
  if (/^\d+$/.test(s)) return Number(s);
  if (Number.isNaN(Date.parse(s)))
    throw new CliError(`--${name} must be an ISO date (2025-06-01T12:00:00Z) or ms since epoch, got "${s}" (see push replay start --help)`, EXIT.USAGE);
  return s;
}

const replayRow = (r: Json) => [
  r.id,
  r.topic,
  r.app ?? '*',
  r.user ?? '*',
  r.state,
  `${r.progress?.replayed ?? 0}/${r.progress?.matched ?? 0}`,
  r.progress?.scanned ?? 0,
  r.ratePerSecond,
  r.from,
  r.to,
];
const REPLAY_HEAD = ['replay', 'topic', 'app', 'user', 'state', 'replayed/matched', 'scanned', 'rate', 'from', 'to'];
const dlqRow = (e: Json) => [
  e.id,
  e.sourceTopic,
  `${e.sourcePartition}@${e.sourceOffset}`,
  e.errorCode,
  e.consumer,
  e.state,
  e.failedAt,
  String(e.reason ?? '').slice(0, 60),
];
const DLQ_HEAD = ['id', 'source topic', 'partition@offset', 'code', 'consumer', 'state', 'failed at', 'reason'];

function selection(p: Parsed, verb: string): { ids: string[] } | { all: true } {
  const ids = p.options.id as string[] | undefined;
  const all = p.options.all === true;
  if (ids && all) throw new CliError(`give --id or --all, not both (see push dlq ${verb} --help)`, EXIT.USAGE);
  if (!ids && !all) throw new CliError(`give --id <id,...> or --all (see push dlq ${verb} --help)`, EXIT.USAGE);
  return ids ? { ids } : { all: true };
}

const SELECT = [
  { name: 'id', type: 'list' as const, description: 'dead letter ids (repeat or comma-separate)', placeholder: '<id,...>' },
  { name: 'all', type: 'boolean' as const, description: 'every dead letter' },
];

const REPLAY_COMMAND: CommandSpec<Target> = {
  name: 'replay',
  summary: 'Replay push.ingest or push.events for a time range: start (or --dry-run), list, show, stop',
  subcommands: [
    {
      name: 'start',
      summary: 'Start a replay of a time range (ids are kept; acked messages are not resent)',
      details: 'Times are ISO dates or ms since epoch. --dry-run reports per partition and app what would be replayed.',
      options: [
        { name: 'topic', type: 'string', description: 'topic to replay', choices: ['ingest', 'events', 'push.ingest', 'push.events'] },
        { name: 'from', type: 'string', description: 'start of the range', placeholder: '<time>' },
        { name: 'to', type: 'string', description: 'end of the range', placeholder: '<time>' },
        { name: 'app', type: 'string', description: 'only this app' },
        { name: 'user', type: 'string', description: 'only this user' },
        { name: 'rate', type: 'number', description: 'records per second', min: 1, placeholder: '<n/s>' },
        { name: 'dry-run', type: 'boolean', description: 'count only, replay nothing' },
      ],
      async run(t, p) {
        const o = p.options;
        for (const k of ['topic', 'from', 'to']) if (o[k] === undefined) throw new CliError(`--${k} is required (see push replay start --help)`, EXIT.USAGE);
        const body = {
          topic: TOPICS[String(o.topic)],
          from: timeArg('from', o.from),
          to: timeArg('to', o.to),
          ...(o.app ? { app: o.app } : {}),
          ...(o.user ? { user: o.user } : {}),
          ...(o.rate !== undefined ? { ratePerSecond: o.rate } : {}),
          ...(o['dry-run'] ? { dryRun: true } : {}),
        };
        const r = await admin(t, '/v1/admin/replays', { method: 'POST', body });
        print(t, r, () =>
          r.dryRun
            ? `dry run of ${r.topic} from ${r.from} to ${r.to}: ${r.total} records would be replayed\n` +
              table(
                ['partition', 'start offset', 'end offset', 'matched'],
                r.partitions.map((x: Json) => [x.partition, x.startOffset, x.endOffset, x.matched]),
              ) +
              table(['app', 'records'], Object.entries(r.apps ?? {}))
            : `replay ${r.id}: ${r.state}\n`,
        );
      },
    },
    {
      name: 'list',
      summary: 'Replays, newest first',
      async run(t) {
        const r = await admin(t, '/v1/admin/replays');
        print(t, r, () => table(REPLAY_HEAD, r.replays.map(replayRow)));
      },
    },
    {
      name: 'show',
      summary: 'One replay with its progress',
      args: [{ name: 'replayId', description: 'replay id' }],
      async run(t, p) {
        const r = await admin(t, `/v1/admin/replays/${encodeURIComponent(p.args.replayId!)}`);
        print(t, r, () => table(REPLAY_HEAD, [replayRow(r)]) + (r.error ? `error: ${r.error}\n` : ''));
      },
    },
    {
      name: 'stop',
      summary: 'Stop a running replay',
      args: [{ name: 'replayId', description: 'replay id' }],
      async run(t, p) {
        const r = await admin(t, `/v1/admin/replays/${encodeURIComponent(p.args.replayId!)}/stop`, { method: 'POST' });
        print(t, r, () => `replay ${r.id}: ${r.state}\n`);
      },
    },
  ],
};

const DLQ_COMMAND: CommandSpec<Target> = {
  name: 'dlq',
  summary: 'Dead letters on push.dlq: list, show, replay (re-submit), purge',
  subcommands: [
    {
      name: 'list',
      summary: 'Dead letters, oldest first',
      options: [
        { name: 'limit', type: 'number', description: 'at most this many', min: 1 },
        { name: 'source-topic', type: 'string', description: 'only records that failed on this topic' },
      ],
      async run(t, p) {
        const q = new URLSearchParams();
        if (p.options.limit !== undefined) q.set('limit', String(p.options.limit));
        if (p.options['source-topic']) q.set('sourceTopic', String(p.options['source-topic']));
        const r = await admin(t, `/v1/admin/dlq${q.size ? `?${q}` : ''}`);
        print(t, r, () => `${r.total} dead letters\n` + table(DLQ_HEAD, r.entries.map(dlqRow)));
      },
    },
    {
      name: 'show',
      summary: 'One dead letter with its headers and value',
      args: [{ name: 'id', description: 'dead letter id' }],
      async run(t, p) {
        const r = await admin(t, `/v1/admin/dlq/${encodeURIComponent(p.args.id!)}`);
        print(
          t,
          r,
          () =>
            table(DLQ_HEAD, [dlqRow(r)]) +
            `reason: ${r.reason}\nkey: ${r.key ?? '-'}\nheaders: ${JSON.stringify(r.headers)}\nvalue (base64): ${r.valueBase64 ?? '-'}\n`,
        );
      },
    },
    {
      name: 'replay',
      summary: 'Re-produce dead letters to their original topic (after a fix, e.g. a new schema)',
      options: SELECT,
      async run(t, p) {
        const r = await admin(t, '/v1/admin/dlq/replay', { method: 'POST', body: selection(p, 'replay') });
        print(
          t,
          r,
          () =>
            `replayed ${r.replayed}` +
            (r.failed?.length
              ? `, failed ${r.failed.length}\n` +
                table(
                  ['id', 'reason'],
                  r.failed.map((f: Json) => [f.id, f.reason]),
                )
              : '\n'),
        );
      },
    },
    {
      name: 'purge',
      summary: 'Drop dead letters for good (--all needs --yes)',
      options: [...SELECT, { name: 'yes', type: 'boolean', description: 'confirm --all' }],
      async run(t, p) {
        const sel = selection(p, 'purge');
        if ('all' in sel && p.options.yes !== true) throw new CliError('purging every dead letter needs --yes', EXIT.USAGE);
        const r = await admin(t, '/v1/admin/dlq/purge', { method: 'POST', body: sel });
        print(t, r, () => `purged ${r.purged}\n`);
      },
    },
  ],
};

export function recoveryCommands(): CommandSpec<Target>[] {
  return [REPLAY_COMMAND, DLQ_COMMAND];
}
