/**
 * Which node to try next. After a drop the first try goes back to the node
 * that last worked (the server resumes a device most cheaply there); each
 * failure moves on to the next node in the list, wrapping around.
 */
export interface NodeList {
  /** The node the next attempt should use. */
  current(): string;
  /** The attempt on `current()` failed: move on. */
  failed(): void;
  /** A connection on `url` worked: prefer it after the next drop. */
  succeeded(url: string): void;
  /** An established connection dropped: go back to the node that worked. */
  dropped(): void;
  /**
   * A new list (from `getToken` or a `reconnect` frame). `keepPreferred`:
   * keep preferring the last good node if it is still listed; otherwise start
   * at the head of the new list.
   */
  replace(nodes: string[], opts: { keepPreferred: boolean }): void;
  readonly nodes: readonly string[];
}

export function createNodeList(initial: readonly string[]): NodeList {
  let nodes = [...initial];
  let index = 0;
  let lastGood: string | undefined;
  const indexOfLastGood = () => (lastGood === undefined ? -1 : nodes.indexOf(lastGood));
  return {
    current: () => nodes[index]!,
    failed() {
      index = (index + 1) % nodes.length;
    },
    succeeded(url) {
      lastGood = url;
      const i = nodes.indexOf(url);
      if (i >= 0) index = i;
    },
    dropped() {
      const i = indexOfLastGood();
      if (i >= 0) index = i;
    },
    replace(next, { keepPreferred }) {
      if (next.length === 0) return;
      nodes = [...next];
      if (!keepPreferred) lastGood = undefined;
      const i = indexOfLastGood();
      index = i >= 0 ? i : 0;
    },
    get nodes() {
      return nodes;
    },
  };
}
