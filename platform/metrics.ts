import { Registry, collectDefaultMetrics, Counter, Gauge, Histogram } from 'prom-client';

export { Counter, Gauge, Histogram };
export type { Registry };

/**
 * Process-wide counters of errors that escaped their own handling: they are
 * counted from places that have no registry at hand (the last-resort process
 * handlers, event listeners guarded by `contain`), so they are created once
 * per process and added to the service's registry by `createRegistry`.
 */
export const processErrors = {
  /** Promise rejections nobody handled: logged and counted; the process keeps running. */
  unhandledRejections: new Counter({
    name: 'push_unhandled_rejections_total',
    help: 'Promise rejections that no code handled (each is logged with its stack); should stay 0',
    registers: [],
  }),
  /** Throws contained at an event listener or timer boundary instead of reaching the process. */
  listenerErrors: new Counter({
    name: 'push_listener_errors_total',
    help: 'Errors thrown by an event listener or timer body and contained there (logged with the listener name); should stay 0',
    labelNames: ['listener'],
    registers: [],
  }),
};

/** One registry per service, with process metrics and a `service` label on everything. */
export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // Event-loop delay sampled every 50 ms rather than prom-client's 10: an idle pusher holding
  // thousands of sockets should not wake up 100 times a second for its own metrics.
  collectDefaultMetrics({ register: registry, prefix: 'push_', eventLoopMonitoringPrecision: 50 });
  for (const metric of Object.values(processErrors)) registry.registerMetric(metric);
  return registry;
}
