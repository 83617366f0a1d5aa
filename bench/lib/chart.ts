import { writeFileSync } from 'node:fs';
import { round } from './scenarioKit.js';

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
}

/**
 * The points of a "% of `total` received over time" chart from sorted arrival times (ms):
 * (0, 0), then about 200 of the arrivals and the last one, times and percentages rounded to 0.1.
 */
export function arrivalCdf(arrivals: number[], total: number): Array<[number, number]> {
  const step = Math.max(1, Math.floor(arrivals.length / 200));
  return [
    [0, 0],
    ...arrivals.flatMap((ms, j): Array<[number, number]> => (j % step === 0 || j === arrivals.length - 1 ? [[round(ms), round(((j + 1) / total) * 100)]] : [])),
  ];
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

const fmt = (v: number) => (Math.abs(v) >= 1000 ? `${Math.round(v / 100) / 10}k` : `${Math.round(v * 100) / 100}`);
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** Renders line series as a standalone SVG (no dependencies) and writes it to `file`. */
export function writeLineChart(file: string, spec: ChartSpec): void {
  const W = 760;
  const H = 360;
  const L = 70;
  const R = 160;
  const T = 40;
  const B = 50;
  const all = spec.series.flatMap((s) => s.points);
  const xMin = all.length ? Math.min(...all.map((p) => p[0])) : 0;
  const xMax = niceMax(all.length ? Math.max(...all.map((p) => p[0])) - xMin : 1) + xMin;
  const yMax = niceMax(all.length ? Math.max(...all.map((p) => p[1])) : 1);
  const x = (v: number) => L + ((v - xMin) / (xMax - xMin || 1)) * (W - L - R);
  const y = (v: number) => H - B - (v / yMax) * (H - T - B);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(spec.title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const yv = (yMax * i) / 5;
    const xv = xMin + ((xMax - xMin) * i) / 5;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(yv)}" y2="${y(yv)}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${L - 6}" y="${y(yv) + 4}" text-anchor="end">${fmt(yv)}</text>`);
    parts.push(`<text x="${x(xv)}" y="${H - B + 16}" text-anchor="middle">${fmt(xv)}</text>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  spec.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<rect x="${W - R + 12}" y="${T + i * 20}" width="12" height="12" fill="${color}"/>`);
    parts.push(`<text x="${W - R + 30}" y="${T + i * 20 + 10}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  writeFileSync(file, `${parts.join('\n')}\n`);
}
