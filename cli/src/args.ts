/**
 * A small typed argument parser for the operator CLI: commands with
 * subcommands, positional arguments and `--options` (`--name value`,
 * `--name=value`, boolean flags, repeatable or comma-separated lists).
 * Every mistake is a UsageError naming the command and the way to get help.
 */
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
  constructor(message: string, readonly command: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Finds the command named by the first words of argv that are not options or
 * option values (so `push --url http://x tasks list` works), and returns the
 * remaining tokens for parseArgs.
 */
export function resolveCommand<C>(root: CommandSpec<C>, argv: string[], globals: OptionSpec[] = []): { command: CommandSpec<C>; path: string[]; rest: string[] } {
  let command = root;
  const path: string[] = [];
  const rest = [...argv];
  let i = 0;
  while (i < rest.length && command.subcommands?.length) {
    const a = rest[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      const key = a.replace(/^--?/, '').split('=')[0]!;
      const opt = [...globals, ...(command.options ?? [])].find((o) => o.name === key);
      i += opt && opt.type !== 'boolean' && !a.includes('=') ? 2 : 1;
      continue;
    }
    const sub = command.subcommands.find((c) => c.name === a);
    if (!sub) {
      const name = ['push', ...path].join(' ');
      throw new UsageError(`unknown command "${a}" for "${name}"; expected one of: ${command.subcommands.map((c) => c.name).join(', ')} (see ${name} --help)`, name);
    }
    rest.splice(i, 1);
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
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === '--help' || a === '-h') {
      out.help = true;
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) fail(`unknown option ${a}`);
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = a.slice(2, eq === -1 ? undefined : eq);
    const opt = byName.get(key);
    if (!opt) fail(`unknown option --${key}`);
    const o = opt!;
    if (o.type === 'boolean') {
      if (eq !== -1) {
        const v = a.slice(eq + 1).toLowerCase();
        if (!['true', 'false'].includes(v)) fail(`--${key} takes no value (or =true/=false), got "${a.slice(eq + 1)}"`);
        out.options[key] = v === 'true';
      } else out.options[key] = true;
      continue;
    }
    let value: string;
    if (eq !== -1) value = a.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) fail(`--${key} needs a value${o.placeholder ? ` ${o.placeholder}` : ''}`);
      value = next!;
      i++;
    }
    out.options[key] = convert(o, value, fail, out.options[key]);
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
      const items = value.split(',').map((s) => s.trim()).filter(Boolean);
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
  if (spec.subcommands?.length) lines.push('', 'Commands:', ...table(spec.subcommands.map((c) => [c.name, c.summary])), '', `Run "${name} <command> --help" for a command's options.`);
  if (spec.args?.length) lines.push('', 'Arguments:', ...table(spec.args.map((a) => [a.name, a.description])));
  const optRow = (o: OptionSpec): [string, string] => [
    `--${o.name}${o.type === 'boolean' ? '' : ` ${o.placeholder ?? (o.type === 'list' ? '<a,b,...>' : o.type === 'number' ? '<n>' : '<value>')}`}`,
    o.description + (o.choices ? ` (${o.choices.join('|')})` : ''),
  ];
  if (spec.options?.length) lines.push('', 'Options:', ...table(spec.options.map(optRow)));
  if (globals.length) lines.push('', 'Common options:', ...table([...globals.map(optRow), ['--help', 'show this help']]));
  return lines.join('\n') + '\n';
}
