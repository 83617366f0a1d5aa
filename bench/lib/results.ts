import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScenarioReport } from './types.js';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  openFilesLimit: string;
}

export function machineInfo(): MachineInfo {
  let openFilesLimit = 'unknown';
  try {
    openFilesLimit = execSync('ulimit -Hn', { shell: '/bin/bash' }).toString().trim();
  } catch {
    /* reported as unknown */
  }
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    openFilesLimit,
  };
}

export function gitCommit(): string {
  try {
    const sha = execSync('git rev-parse --short HEAD', { cwd: BENCH_DIR }).toString().trim();
    const dirty = execSync('git status --porcelain --untracked-files=no', { cwd: BENCH_DIR }).toString().trim() !== '';
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

/** A fresh folder for one run: bench/results/<ISO time>/. */
export function newRunDir(label = ''): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = path.join(RESULTS_DIR, label ? `${stamp}-${label}` : stamp);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes `<outDir>/<scenario>.json` with the machine, commit and time added; returns the path. */
export function writeReport(outDir: string, report: ScenarioReport): string {
  const file = path.join(outDir, `${report.scenario}.json`);
  const doc = { ...report, machine: machineInfo(), commit: gitCommit(), at: new Date().toISOString() };
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  return file;
}
