import * as hdr from 'hdr-histogram-js';

/** Latency percentiles in milliseconds, as every scenario reports them. */
export interface LatencySummary {
  count: number;
  /** Smallest recorded value (0 when empty). */
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/**
 * An HDR histogram of latencies recorded in microseconds (1 us to 5 min,
 * 3 significant digits), reported in milliseconds.
 */
export class LatencyHistogram {
  private readonly h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 300_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });

  recordMs(ms: number): void {
    this.h.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  add(other: LatencyHistogram): void {
    this.h.add(other.h);
  }

  /** Compact form for passing between processes (base64 of the compressed histogram). */
  encode(): string {
    return hdr.encodeIntoCompressedBase64(this.h);
  }

  static decode(encoded: string): LatencyHistogram {
    const out = new LatencyHistogram();
    out.h.add(hdr.decodeFromCompressedBase64(encoded, 32, false));
    return out;
  }

  get count(): number {
    return this.h.totalCount;
  }

  summary(): LatencySummary {
    const ms = (us: number) => Math.round(us) / 1000;
    return {
      count: this.h.totalCount,
      min: this.h.totalCount > 0 ? ms(this.h.minNonZeroValue) : 0,
      mean: ms(this.h.mean),
      p50: ms(this.h.getValueAtPercentile(50)),
      p90: ms(this.h.getValueAtPercentile(90)),
      p99: ms(this.h.getValueAtPercentile(99)),
      p999: ms(this.h.getValueAtPercentile(99.9)),
      max: ms(this.h.maxValue),
    };
  }
}

export const formatLatency = (s: LatencySummary): string =>
  `p50 ${s.p50} ms, p90 ${s.p90} ms, p99 ${s.p99} ms, p99.9 ${s.p999} ms, max ${s.max} ms (n=${s.count})`;
