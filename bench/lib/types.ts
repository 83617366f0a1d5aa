/** What every benchmark scenario takes and gives back; `bench/run.ts` ties them together. */
export interface ScenarioOptions {
  /** Smaller sizes and shorter phases, so `bench all --quick` fits in minutes. */
  quick: boolean;
  /** Scenario-specific options from the command line (`--clients 2000` -> `{ clients: '2000' }`). */
  args: Record<string, string | boolean>;
  /** Folder of this run (`bench/results/<run>/`); write JSON and charts here. */
  outDir: string;
  log: (line: string) => void;
}

export interface ScenarioReport {
  scenario: string;
  /** The options the scenario actually used (after defaults and --quick). */
  options: Record<string, unknown>;
  /** Human summary lines, printed and copied into the combined report. */
  summary: string[];
  /** Machine-readable figures. */
  metrics: Record<string, unknown>;
  /** Chart files written into outDir (file names relative to outDir). */
  charts: string[];
  /** Targets from the issue, each with the measured value and whether it was met. */
  targets?: TargetCheck[];
}

export interface TargetCheck {
  name: string;
  target: string;
  measured: string;
  met: boolean;
}

export type Scenario = (options: ScenarioOptions) => Promise<ScenarioReport>;
