import { test } from 'node:test';
import assert from 'node:assert/strict';
import { helpText, parseArgs, resolveCommand, UsageError, type CommandSpec, type OptionSpec } from './args.js';
import { isLoopback, resolveTarget, CliError } from './client.js';
import { main, ROOT } from './main.js';

const GLOBALS: OptionSpec[] = [
  { name: 'url', type: 'string', description: 'url' },
  { name: 'json', type: 'boolean', description: 'json' },
];
const ROOTSPEC: CommandSpec = {
  name: 'push',
  summary: 'root',
  subcommands: [
    {
      name: 'tasks',
      summary: 'tasks',
      subcommands: [
        {
          name: 'list',
          summary: 'list',
          options: [
            { name: 'limit', type: 'number', description: 'n', min: 1, max: 500 },
            { name: 'app', type: 'string', description: 'app' },
          ],
        },
        { name: 'stop', summary: 'stop', args: [{ name: 'taskId', description: 'id' }] },
      ],
    },
    {
      name: 'send',
      summary: 'send',
      options: [
        { name: 'user', type: 'list', description: 'users' },
        { name: 'transient', type: 'boolean', description: 't' },
        { name: 'topic', type: 'string', description: 'topic', choices: ['ingest', 'events'] },
      ],
    },
  ],
};

const run = (argv: string[]) => {
  const { command, path, rest } = resolveCommand(ROOTSPEC, argv, GLOBALS);
  return parseArgs(command, path, rest, GLOBALS);
};
const usage = (argv: string[], pattern: RegExp) =>
  assert.throws(
    () => run(argv),
    (err: unknown) => err instanceof UsageError && err.exitCode === 2 && pattern.test(err.message),
  );

test('subcommands, positionals and typed options, with global options anywhere', () => {
  const p = run(['--url', 'http://x:1', 'tasks', 'list', '--limit=20', '--json', '--app', 'demo']);
  assert.deepEqual(p.path, ['tasks', 'list']);
  assert.deepEqual(p.options, { url: 'http://x:1', limit: 20, json: true, app: 'demo' });
  assert.deepEqual(run(['tasks', 'stop', '01ABC']).args, { taskId: '01ABC' });
});

test('list options repeat and split on commas; booleans take no value', () => {
  const p = run(['send', '--user', 'a,b', '--user=c', '--transient']);
  assert.deepEqual(p.options.user, ['a', 'b', 'c']);
  assert.equal(p.options.transient, true);
  assert.equal(run(['send', '--transient=false']).options.transient, false);
});

test('--help is recognised on every level and skips argument checks', () => {
  assert.equal(run(['tasks', 'stop', '--help']).help, true);
  assert.equal(run(['tasks', 'list', '-h']).help, true);
  const text = helpText(ROOTSPEC.subcommands![0]!.subcommands![0]!, ['tasks', 'list'], GLOBALS);
  assert.match(text, /^Usage: push tasks list \[options\]/);
  assert.match(text, /--limit <n>/);
  assert.match(text, /--url <value>/);
});

test('mistakes are usage errors that name the command and the fix', () => {
  usage(['tasks', 'drop'], /unknown command "drop" for "push tasks"; expected one of: list, stop/);
  usage(['tasks', 'list', '--limit', 'ten'], /--limit must be a number, got "ten" \(see push tasks list --help\)/);
  usage(['tasks', 'list', '--limit', '0'], /--limit must be at least 1/);
  usage(['tasks', 'list', '--limit'], /--limit needs a value/);
  usage(['tasks', 'list', '--bogus'], /unknown option --bogus/);
  usage(['tasks', 'stop'], /missing argument <taskId>/);
  usage(['tasks', 'stop', 'a', 'b'], /unexpected argument "b"/);
  usage(['send', '--topic', 'other'], /--topic must be one of ingest, events/);
  usage(['send', '--transient=maybe'], /--transient takes no value/);
  usage(['send', '-x'], /unknown option -x/);
  usage(['tasks', 'list', '--limit', '--json'], /--limit needs a value/);
  usage(['tasks', 'list', '--app='], /--app must not be empty/);
  usage(['tasks', 'list', '--limit=5', 'extra'], /unexpected argument "extra" \(see push tasks list --help\)/);
});

test('after --, and for negative numbers, words are positional arguments', () => {
  assert.deepEqual(run(['tasks', 'stop', '--', '--not-an-option']).args, { taskId: '--not-an-option' });
  assert.deepEqual(run(['tasks', 'stop', '-5']).args, { taskId: '-5' });
  assert.equal(run(['tasks', 'list', '--app', '-a']).options.app, '-a');
});

test('operator and app keys default to the development keys only for loopback URLs', () => {
  assert.equal(isLoopback('http://127.0.0.1:8082'), true);
  assert.equal(isLoopback('http://localhost:8082'), true);
  assert.equal(isLoopback('https://push.example.com'), false);
  assert.equal(resolveTarget({}, {}).operatorKey(), 'operator-key');
  assert.equal(resolveTarget({}, { PUSH_OPERATOR_KEY: 'secret' }).operatorKey(), 'secret');
  assert.equal(resolveTarget({ key: 'flag' }, { PUSH_OPERATOR_KEY: 'secret' }).operatorKey(), 'flag');
  const remote = resolveTarget({}, { PUSH_ADMIN_URL: 'https://push.example.com', PUSH_COLLECTOR_URL: 'https://in.example.com' });
  assert.throws(
    () => remote.operatorKey(),
    (e: unknown) => e instanceof CliError && /PUSH_OPERATOR_KEY/.test(e.message),
  );
  assert.throws(
    () => remote.appKey(),
    (e: unknown) => e instanceof CliError && /PUSH_APP_KEY/.test(e.message),
  );
  assert.throws(() => resolveTarget({ url: 'ftp://x' }, {}), /must be an http\(s\) URL/);
});

test('every command of the real CLI answers --help with exit 0', async () => {
  const walk = (c: CommandSpec<unknown>, path: string[]): string[][] => [
    path,
    ...(c.subcommands ?? []).flatMap((s) => walk(s as CommandSpec<unknown>, [...path, s.name])),
  ];
  const paths = walk(ROOT as CommandSpec<unknown>, []);
  assert.ok(paths.length >= 25, `${paths.length} commands`);
  for (const path of paths) {
    let out = '';
    const code = await main([...path, '--help'], {}, { out: (s) => (out += s), err: (s) => (out += s) });
    assert.equal(code, 0, `push ${path.join(' ')} --help`);
    assert.match(out, new RegExp(`^Usage: ${['push', ...path].join(' ')}`), `push ${path.join(' ')} --help`);
  }
});
