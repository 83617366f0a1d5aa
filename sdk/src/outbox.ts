/**
 * Upstream frames sent while there is no connection: kept in order, at most
 * `max` of them, and sent on the next welcome.
 */
export class Outbox {
  private readonly frames: string[] = [];

  constructor(private readonly max: number) {}

  /** Keeps `frame` for the next connection; false (dropped) when the queue is full. */
  push(frame: string): boolean {
    if (this.frames.length >= this.max) return false;
    this.frames.push(frame);
    return true;
  }

  /** Sends the queued frames in order until `send` refuses one, which stays queued with those after it. */
  drain(send: (frame: string) => boolean): void {
    while (this.frames.length > 0 && send(this.frames[0]!)) this.frames.shift();
  }

  clear(): void {
    this.frames.length = 0;
  }
}
