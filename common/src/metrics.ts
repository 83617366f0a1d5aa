import { Registry, collectDefaultMetrics, Counter, Gauge, Histogram } from 'prom-client';

export { Counter, Gauge, Histogram };
export type { Registry };

/** One registry per service, with process metrics and a `service` label on everything. */
export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // Event-loop delay sampled every 50 ms rather than prom-client's 10: an idle pusher holding
  // thousands of sockets should not wake up 100 times a second for its own metrics.
  collectDefaultMetrics({ register: registry, prefix: 'push_', eventLoopMonitoringPrecision: 50 });
  return registry;
}
