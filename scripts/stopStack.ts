/**
 * The one way `npm start` ends: stop the services, then the infrastructure
 * this run started, then exit. Every reason to stop (Ctrl-C, SIGTERM, a
 * service that exits, a start that fails, often two of them at once) goes
 * through `stop`; the first call does the work and later calls wait for it,
 * so the process never exits while servers it started are still being
 * stopped. The exit code is the worst one asked for.
 */
export interface StackStopperDeps {
  /** Signals every service process and resolves when all have exited. */
  stopServices(): Promise<void>;
  /** The servers this run started, once their start has settled (a start in progress is waited for). */
  startedInfra(): Promise<string[]>;
  infraDown(only: string[]): Promise<void>;
  log(line: string): void;
  exit(code: number): void;
}

export interface StackStopper {
  readonly stopping: boolean;
  stop(code: number): Promise<void>;
}

export function createStackStopper(deps: StackStopperDeps): StackStopper {
  let done: Promise<void> | undefined;
  let exitCode = 0;
  const run = async () => {
    deps.log('[start] stopping services...');
    try {
      await deps.stopServices();
    } catch (err) {
      exitCode = Math.max(exitCode, 1);
      deps.log(`[start] stopping services failed: ${(err as Error).message}`);
    }
    try {
      const only = await deps.startedInfra();
      if (only.length > 0) {
        deps.log(`[start] stopping the infrastructure this run started: ${only.join(', ')}`);
        await deps.infraDown(only);
      }
    } catch (err) {
      exitCode = Math.max(exitCode, 1);
      deps.log(`[start] stopping the infrastructure failed: ${(err as Error).message}`);
    }
    deps.exit(exitCode);
  };
  return {
    get stopping() {
      return done !== undefined;
    },
    stop(code) {
      exitCode = Math.max(exitCode, code);
      if (done) {
        deps.log('[start] already stopping; waiting for the services and the infrastructure to stop');
        return done;
      }
      done = run();
      return done;
    },
  };
}
