/**
 * `push`: the operator CLI. Talks to the admin service's operator API (status,
 * lag, tasks, replay, dlq, trace, kick) with the operator key and to the
 * collector (send, presence) with an app key. Exit codes: see client.ts EXIT.
 */
import { helpText, parseArgs, resolveCommand, UsageError, type CommandSpec, type OptionSpec } from './args.js';
import { CliError, EXIT, resolveTarget, type CliEnv, type Target } from './client.js';
import { observeCommands } from './observeCommands.js';
import { controlCommands } from './controlCommands.js';
import { recoveryCommands } from './recoveryCommands.js';

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'url', type: 'string', description: 'admin service URL (env PUSH_ADMIN_URL, default http://127.0.0.1:8082)', placeholder: '<url>' },
  { name: 'collector-url', type: 'string', description: 'collector URL (env PUSH_COLLECTOR_URL, default http://127.0.0.1:8080)', placeholder: '<url>' },
  { name: 'key', type: 'string', description: 'operator key (env PUSH_OPERATOR_KEY; "operator-key" for a loopback URL)', placeholder: '<key>' },
  { name: 'app-key', type: 'string', description: 'app API key for send/presence (env PUSH_APP_KEY; "demo-key" for a loopback URL)', placeholder: '<key>' },
  { name: 'json', type: 'boolean', description: 'print the API answer as JSON' },
  { name: 'timeout', type: 'number', description: 'per-request timeout (default 10000)', min: 100, placeholder: '<ms>' },
];

export const ROOT: CommandSpec<Target> = {
  name: 'push',
  summary: 'Operate a kafka-push cluster: status, lag, tasks, replay, dead letters, users, nodes, traces.',
  details: 'Exit codes: 0 done, 1 the API answered an error, 2 bad arguments, 3 a service could not be reached.',
  subcommands: [...observeCommands(), ...controlCommands(), ...recoveryCommands()],
};

/** Runs the CLI; returns the exit code. Output goes to the given writers (tests pass their own). */
export interface CliIo {
  out(text: string): unknown;
  err(text: string): unknown;
}

const STDIO: CliIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

export async function main(argv: string[], env: CliEnv, io: CliIo = STDIO): Promise<number> {
  try {
    const { command, path, rest } = resolveCommand(ROOT, argv, GLOBAL_OPTIONS);
    if (!command.run) {
      const parsed = parseArgs({ ...command, args: [] }, path, rest, GLOBAL_OPTIONS);
      if (parsed.help || path.length === 0) {
        io.out(helpText(command, path, GLOBAL_OPTIONS));
        return parsed.help ? EXIT.OK : EXIT.USAGE;
      }
      io.err(`push: missing command for "${['push', ...path].join(' ')}"\n\n${helpText(command, path, GLOBAL_OPTIONS)}`);
      return EXIT.USAGE;
    }
    const parsed = parseArgs(command, path, rest, GLOBAL_OPTIONS);
    if (parsed.help) {
      io.out(helpText(command, path, GLOBAL_OPTIONS));
      return EXIT.OK;
    }
    const target = resolveTarget(parsed.options, env);
    return (await command.run(target, parsed)) ?? EXIT.OK;
  } catch (err) {
    if (err instanceof UsageError || err instanceof CliError) {
      io.err(`push: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`push: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.API;
  }
}
