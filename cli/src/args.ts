/**
 * Typed arguments for the operator CLI: commands with subcommands,
 * positional arguments and `--options` (`--name value`, `--name=value`,
 * boolean flags, repeatable or comma-separated lists). `node:util` parseArgs
 * splits argv into tokens; this module adds the command tree, the types,
 * bounds and choices, and the error messages: every mistake is a UsageError
 * naming the command and the way to get help.
 */
import { parseArgs as utilParseArgs, type ParseArgsConfig } from 'node:util';

export type OptionType = 'string' | 'number' | 'boolean' | 'list';
export type OptionValue = string | number | boolean | string[];

export interface OptionSpec {
  name: string;
  type: OptionType;
  description: string;
  /** Shown in help, e.g. `<ms>`. */
  placeholder?: string;
  /** For number options. */
  min?: number;
  max?: number;
  /** For string options: the accepted values. */
  choices?: readonly string[];
}

export interface ArgSpec {
  name: string;
  description: string;
  optional?: boolean;
}

export interface CommandSpec<C = unknown> {
  name: string;
  summary: string;
  /** More text under the usage line in --help. */
  details?: string;
  args?: ArgSpec[];
  options?: OptionSpec[];
  subcommands?: CommandSpec<C>[];
  run?: (ctx: C, parsed: Parsed) => Promise<number | void>;
}

export interface Parsed {
  /** Command names from the root, e.g. ['tasks', 'stop']. */
  path: string[];
  args: Record<string, string | undefined>;
  options: Record<string, OptionValue | undefined>;
  help: boolean;
}

export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

type Token = ReturnType<typeof utilParseArgs>['tokens'] extends (infer T)[] | undefined ? T : never;

/** The `node:util` parseArgs configuration of a set of options: booleans as booleans, every other value as strings. */
function utilOptions(options: OptionSpec[]): ParseArgsConfig['options'] {
  const config: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const o of options) config[o.name] = o.type === 'boolean' ? { type: 'boolean' } : { type: 'string', multiple: o.type === 'list' };
  return config;
}

/**
 * Splits argv into tokens with `node:util` parseArgs (long options with or
 * without `=`, short `-h`, `--`), non-strict so this module can word the
 * errors; a negative number such as `-5` stays a positional argument.
 */
function tokenize(argv: string[], options: OptionSpec[]): Token[] {
  const { tokens } = utilParseArgs({ args: argv, options: utilOptions(options), strict: false, allowPositionals: true, tokens: true });
  const out: Token[] = [];
  for (const t of tokens) {
    if (t.kind === 'option' && t.rawName.startsWith('-') && !t.rawName.startsWith('--') && /^-\d/.test(argv[t.index]!)) {
      if (out.at(-1)?.index !== t.index) out.push({ kind: 'positional', index: t.index, value: argv[t.index]! });
    } else out.push(t);
  }
  return out;
}

/**
 * Finds the command named by the first words of argv that are not options or
 * option values (so `push --url http://x tasks list` works), and returns the
 * remaining tokens for parseArgs.
 */
export function resolveCommand<C>(
  root: CommandSpec<C>,
  argv: string[],
  globals: OptionSpec[] = [],
): { command: CommandSpec<C>; path: string[]; rest: string[] } {
  let command = root;
  const path: string[] = [];
  const rest = [...argv];
  while (command.subcommands?.length) {
    const tokens = tokenize(rest, [...globals, ...(command.options ?? [])]);
    const stop = tokens.findIndex((t) => t.kind === 'positional' || t.kind === 'option-terminator');
    const word = tokens[stop];
    if (word?.kind !== 'positional') break;
    const sub = command.subcommands.find((c) => c.name === word.value);
    if (!sub) {
      const name = ['push', ...path].join(' ');
      throw new UsageError(
        `unknown command "${word.value}" for "${name}"; expected one of: ${command.subcommands.map((c) => c.name).join(', ')} (see ${name} --help)`,
        name,
      );
    }
    rest.splice(word.index, 1);
    path.push(sub.name);
    command = sub;
  }
  return { command, path, rest };
}

/** Parses the arguments of one (leaf) command, with the options every command shares. */
export function parseArgs<C>(spec: CommandSpec<C>, path: string[], argv: string[], globals: OptionSpec[] = []): Parsed {
  const name = ['push', ...path].join(' ');
  const fail = (msg: string): never => {
    throw new UsageError(`${msg} (see ${name} --help)`, name);
  };
  const options = [...(spec.options ?? []), ...globals];
  const byName = new Map(options.map((o) => [o.name, o]));
  const out: Parsed = { path, args: {}, options: {}, help: false };
  const positionals: string[] = [];
  for (const t of tokenize(argv, options)) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    if (t.name === 'help') {
      out.help = true;
      continue;
    }
    const o = byName.get(t.name) ?? fail(`unknown option ${t.rawName.startsWith('--') ? t.rawName : argv[t.index]}`);
    if (o.type === 'boolean') out.options[o.name] = booleanValue(o, t.value, fail);
    else {
      const missing = t.value === undefined || (!t.inlineValue && t.value.startsWith('--') && t.value.length > 2);
      if (missing) fail(`--${o.name} needs a value${o.placeholder ? ` ${o.placeholder}` : ''}`);
      out.options[o.name] = convert(o, t.value!, fail, out.options[o.name]);
    }
  }
  if (out.help) return out;
  const args = spec.args ?? [];
  if (positionals.length > args.length) fail(`unexpected argument "${positionals[args.length]}"`);
  args.forEach((arg, i) => {
    const v = positionals[i];
    if (v === undefined && !arg.optional) fail(`missing argument <${arg.name}>`);
    out.args[arg.name] = v;
  });
  return out;
}

/** A boolean flag alone is true; `=true` / `=false` are accepted too. */
function booleanValue(o: OptionSpec, value: string | undefined, fail: (m: string) => never): boolean {
  if (value === undefined) return true;
  const v = value.toLowerCase();
  if (v !== 'true' && v !== 'false') fail(`--${o.name} takes no value (or =true/=false), got "${value}"`);
  return v === 'true';
}

function convert(o: OptionSpec, value: string, fail: (m: string) => never, previous: OptionValue | undefined): OptionValue {
  switch (o.type) {
    case 'number': {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) return fail(`--${o.name} must be a number, got "${value}"`);
      if (o.min !== undefined && n < o.min) return fail(`--${o.name} must be at least ${o.min}, got ${n}`);
      if (o.max !== undefined && n > o.max) return fail(`--${o.name} must be at most ${o.max}, got ${n}`);
      return n;
    }
    case 'list': {
      const items = value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (items.length === 0) return fail(`--${o.name} needs at least one value`);
      return [...((previous as string[] | undefined) ?? []), ...items];
    }
    default:
      if (value === '') return fail(`--${o.name} must not be empty`);
      if (o.choices && !o.choices.includes(value)) return fail(`--${o.name} must be one of ${o.choices.join(', ')}, got "${value}"`);
      return value;
  }
}

/** Help text of a command: usage, arguments, options, subcommands. */
export function helpText<C>(spec: CommandSpec<C>, path: string[], globals: OptionSpec[] = []): string {
  const name = ['push', ...path].join(' ');
  const lines: string[] = [];
  const args = (spec.args ?? []).map((a) => (a.optional ? `[${a.name}]` : `<${a.name}>`)).join(' ');
  if (spec.subcommands?.length) lines.push(`Usage: ${name} <command> [options]`);
  else lines.push(`Usage: ${name}${args ? ` ${args}` : ''} [options]`);
  lines.push('', spec.summary);
  if (spec.details) lines.push('', spec.details);
  const table = (rows: [string, string][]) => {
    const w = Math.max(...rows.map((r) => r[0].length));
    return rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`);
  };
  if (spec.subcommands?.length)
    lines.push('', 'Commands:', ...table(spec.subcommands.map((c) => [c.name, c.summary])), '', `Run "${name} <command> --help" for a command's options.`);
  if (spec.args?.length) lines.push('', 'Arguments:', ...table(spec.args.map((a) => [a.name, a.description])));
  const optRow = (o: OptionSpec): [string, string] => [
    `--${o.name}${o.type === 'boolean' ? '' : ` ${o.placeholder ?? (o.type === 'list' ? '<a,b,...>' : o.type === 'number' ? '<n>' : '<value>')}`}`,
    o.description + (o.choices ? ` (${o.choices.join('|')})` : ''),
  ];
  if (spec.options?.length) lines.push('', 'Options:', ...table(spec.options.map(optRow)));
  if (globals.length) lines.push('', 'Common options:', ...table([...globals.map(optRow), ['--help', 'show this help']]));
  return lines.join('\n') + '\n';
}
