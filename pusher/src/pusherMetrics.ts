import { Counter, Gauge, Histogram, type Registry } from '../../platform/metrics.js';

export type PusherMetrics = ReturnType<typeof createPusherMetrics>;

export function createPusherMetrics(registry: Registry, connections: () => number) {
  const registers = [registry];
  return {
    connections: new Gauge({
      name: 'push_connections',
      help: 'Open WebSocket connections on this node',
      registers,
      collect() {
        this.set(connections());
      },
    }),
    handshakes: new Counter({ name: 'push_handshakes_total', help: 'WebSocket handshakes by outcome', labelNames: ['outcome'], registers }),
    delivered: new Counter({ name: 'push_delivered_total', help: 'Message frames written to sockets, by path', labelNames: ['path'], registers }),
    dropped: new Counter({ name: 'push_dropped_total', help: 'Messages not written, by reason', labelNames: ['reason'], registers }),
    acks: new Counter({ name: 'push_acked_total', help: 'Message ids acknowledged by clients', registers }),
    ackRecords: new Counter({
      name: 'push_ack_records_total',
      help: 'Ack records sent to push.acks, by outcome (published, failed)',
      labelNames: ['outcome'],
      registers,
    }),
    parked: new Counter({ name: 'push_parked_total', help: 'Messages parked for a device after too many unacknowledged deliveries', registers }),
    closes: new Counter({ name: 'push_closes_total', help: 'Connections closed, by close code', labelNames: ['code'], registers }),
    badFrames: new Counter({ name: 'push_bad_frames_total', help: 'Client frames refused, by reason', labelNames: ['reason'], registers }),
    unknownAcks: new Counter({ name: 'push_ack_unknown_ids_total', help: 'Ack ids dropped because they were not delivered on that connection', registers }),
    frameErrors: new Counter({
      name: 'push_frame_handler_errors_total',
      help: 'Client frames whose handling threw (a bug; the connection was closed with 1011)',
      registers,
    }),
    latency: new Histogram({
      name: 'push_end_to_end_seconds',
      help: 'Submission to socket write, live path',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
}
