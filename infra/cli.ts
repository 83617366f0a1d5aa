import { consoleLog, infraDown, infraStatus, infraUp, type ServerStatus } from './stack.js';
import { seconds } from './process.js';

const USAGE = 'usage: tsx infra/cli.ts up | down [kafka|redis|postgres|mongo ...] | status';

function printTable(rows: ServerStatus[]): void {
  const table = [['NAME', 'STATE', 'ADDRESS', 'PID', 'NOTE'], ...rows.map((r) => [r.name, r.state, r.address, r.pid ? String(r.pid) : '-', r.note ?? ''])];
  const widths = table[0]!.map((_, col) => Math.max(...table.map((row) => row[col]!.length)));
  for (const row of table)
    console.log(
      row
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join('  ')
        .trimEnd(),
    );
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const t0 = Date.now();
  switch (command) {
    case 'up': {
      const { started, reused, external } = await infraUp({ log: consoleLog });
      const parts = [
        started.length ? `started ${started.join(', ')}` : '',
        reused.length ? `reused ${reused.join(', ')}` : '',
        external.length ? `external ${external.join(', ')}` : '',
      ].filter(Boolean);
      consoleLog(`up in ${seconds(t0)}: ${parts.join('; ')}`);
      return 0;
    }
    case 'down': {
      const { stopped } = await infraDown({ only: rest, log: consoleLog });
      consoleLog(`down in ${seconds(t0)}: ${stopped.length ? `stopped ${stopped.join(', ')}` : 'nothing to stop'}`);
      return 0;
    }
    case 'status':
      printTable(await infraStatus());
      return 0;
    default:
      console.error(USAGE);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[infra] error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
