import type { BrowserContext, CDPSession, Frame } from 'playwright-core';
import { FRAME_ID_SPAN, type FrameRemap } from '../protocol/index.js';
import { CHECKPOINT_MARK, FRAME_HELLO, SNAPSHOT_MARK } from './page/checkpoint-mark.js';

/** How long the server waits for a frame (or the frame holding its `<iframe>`) to answer. */
const FRAME_CALL_TIMEOUT_MS = 5000;

/** Frames of one page that record themselves at once; more are not recorded (a page can make thousands, each a snapshot per checkpoint). */
export const MAX_RECORDED_FRAMES = 64;

/** Waits before asking again when a frame's `<iframe>` was not found, or its checkpoint did not run. */
const RETRY_MS = [100, 400, 1500];

/** Out-of-process frames' DevTools targets we attach to, per page (each one a session). */
const MAX_TARGETS = 32;

/**
 * rrweb's id of the `<iframe>` this runs on (`this`), from the recorder that records its document:
 * the nearest window up the same-origin chain with `__domcast` (frames that record nothing have none).
 */
const ID_OF_OWNER = `function () {
  try {
    let w = this.ownerDocument && this.ownerDocument.defaultView;
    for (let i = 0; w && i < 64; i++) {
      const api = w.__domcast;
      if (api) return api.idOf(this);
      if (w.parent === w) return -1;
      w = w.parent;
    }
  } catch {}
  return -1;
}`;

/** A DevTools session on a page's process: the page's own, or an out-of-process frame's. */
interface Target {
  cdp: CDPSession;
  /** Main-world execution contexts, by id: the frame each belongs to. */
  worlds: Map<number, string>;
  /** Frames recording themselves, by their main world's context id. */
  roots: Map<number, FrameRoot>;
  /** An out-of-process frame's target (the page's own has none): forgotten once its session no longer answers. */
  targetId?: string;
}

/** A frame whose document records itself (its parent cannot read it), for as long as that document lives. */
interface FrameRoot {
  target: Target;
  contextId: number;
  frameId: string;
  /** This document's range in the stream (FRAME_ID_SPAN × n, n from 1): one per document, kept across its checkpoints. */
  base: number;
  /** Where its batches go: null until the mark of the checkpoint we asked for (they are dropped until then). */
  remap: FrameRemap | null;
  /** What the next CHECKPOINT_MARK makes `remap`. */
  pending: FrameRemap | null;
  /** Its FullSnapshot is in the stream: frames under it can be attached. */
  snapshotted: boolean;
  asking: boolean;
  askAgain: boolean;
}

export interface FrameHooks {
  /** A batch of a frame, with where it goes in the stream. */
  take(json: string, frame: FrameRemap): void;
}

/**
 * The cross-origin frames of one page that record themselves. The top frame's recorder cannot read
 * them, and rrweb's own answer (`recordCrossOriginIframes`) has each frame post its events to its
 * parent window, where the parent page's scripts can read them: a payment form's fields handed to
 * the page around it. Here each frame sends through the DevTools binding of its own window, and the
 * server places its events in the page's stream (src/protocol/frames.ts), attached to the
 * `<iframe>` element the frame above it recorded, whose id it asks that frame for.
 *
 * The viewer rebuilds the whole page from each FullSnapshot of the top frame, and rrweb has no
 * notion of a frame's content without it; so whenever a recorder sends one (SNAPSHOT_MARK: a new
 * document, a checkpoint, a tab shown again) every frame under it is asked for a fresh snapshot of
 * its own (`checkpoint()`), and its batches are dropped until that snapshot's mark. A late joiner,
 * who starts from the latest checkpoint, gets the frames' snapshots that followed it.
 */
export class CrossOriginFrames {
  private readonly targets = new Set<Target>();
  private readonly targetIds = new Set<string>();
  private nextBase = 1;
  private topSnapshotted = false;

  constructor(
    private readonly context: BrowserContext,
    private readonly mainFrameId: string,
    private readonly binding: string,
    private readonly hooks: FrameHooks,
  ) {}

  /** Follows the main-world contexts of a session (the page's, before its Runtime.enable). */
  watch(cdp: CDPSession, targetId?: string): Target {
    const target: Target = { cdp, worlds: new Map(), roots: new Map(), ...(targetId ? { targetId } : {}) };
    this.targets.add(target);
    cdp.on('Runtime.executionContextCreated', ({ context }) => {
      const aux = context.auxData as { frameId?: string; isDefault?: boolean } | undefined;
      if (aux?.isDefault === true && typeof aux.frameId === 'string' && aux.frameId !== this.mainFrameId) target.worlds.set(context.id, aux.frameId);
    });
    cdp.on('Runtime.executionContextDestroyed', ({ executionContextId }) => {
      target.worlds.delete(executionContextId);
      target.roots.delete(executionContextId);
    });
    cdp.on('Runtime.executionContextsCleared', () => {
      target.worlds.clear();
      target.roots.clear();
    });
    return target;
  }

  /** Frames whose documents started before the binding was there say now whether they record themselves. */
  greet(target: Target): void {
    for (const contextId of target.worlds.keys()) void this.evaluate(target, contextId, 'globalThis.__domcast?.hello?.()');
  }

  /**
   * A frame that may be out of process (Chromium puts cross-site frames in processes of their own):
   * its target gets a session with the binding. Its documents ran their init script before that, so
   * they are greeted once it is there.
   */
  async adopt(frame: Frame): Promise<void> {
    if (this.targetIds.size >= MAX_TARGETS) return;
    let cdp: CDPSession;
    try {
      cdp = await this.context.newCDPSession(frame);
    } catch {
      return; // in the page's process: its binding calls come through the page's session
    }
    try {
      const { targetInfo } = await cdp.send('Target.getTargetInfo');
      if (this.targetIds.has(targetInfo.targetId)) {
        await cdp.detach();
        return;
      }
      this.targetIds.add(targetInfo.targetId);
      const target = this.watch(cdp, targetInfo.targetId);
      cdp.on('Runtime.bindingCalled', ({ name, payload, executionContextId }) => {
        if (name === this.binding) this.called(target, executionContextId, payload);
      });
      await cdp.send('Runtime.enable');
      await cdp.send('Runtime.addBinding', { name: this.binding });
      this.greet(target);
    } catch {
      // The frame went away meanwhile.
    }
  }

  /** A binding call from a frame other than the top one's main world. */
  called(target: Target, contextId: number, payload: string): void {
    const frameId = target.worlds.get(contextId);
    if (frameId === undefined) return;
    let root = target.roots.get(contextId);
    if (payload === FRAME_HELLO) {
      if (root || this.rootCount() >= MAX_RECORDED_FRAMES) return;
      root = { target, contextId, frameId, base: this.nextBase++ * FRAME_ID_SPAN, remap: null, pending: null, snapshotted: false, asking: false, askAgain: false };
      target.roots.set(contextId, root);
      void this.ask(root);
      return;
    }
    if (!root) return;
    if (payload === CHECKPOINT_MARK) {
      if (root.pending) [root.remap, root.pending] = [root.pending, null];
      return;
    }
    if (payload === SNAPSHOT_MARK) {
      if (root.remap) {
        root.snapshotted = true;
        void this.askUnder(root);
      }
      return;
    }
    if (root.remap) this.hooks.take(payload, root.remap);
  }

  /** The top frame sent a FullSnapshot: every frame snapshots again, after it. */
  topSnapshot(): void {
    this.topSnapshotted = true;
    for (const root of this.roots()) void this.ask(root);
  }

  /** The top frame's document is gone: frames wait for the next one's snapshot. */
  topGone(): void {
    this.topSnapshotted = false;
  }

  /** Asks every frame that records itself to send what it buffered; resolves when they answered (or gave up). */
  async flush(): Promise<void> {
    await Promise.all(this.roots().filter((r) => r.remap).map((r) => this.evaluate(r.target, r.contextId, 'globalThis.__domcast?.flush()')));
  }

  private rootCount(): number {
    let n = 0;
    for (const t of this.targets) n += t.roots.size;
    return n;
  }

  private roots(): FrameRoot[] {
    return [...this.targets].flatMap((t) => [...t.roots.values()]);
  }

  private alive(root: FrameRoot): boolean {
    return root.target.roots.get(root.contextId) === root;
  }

  /** Asks the frames whose nearest recorded frame above is `parent` for a fresh snapshot (its own has just replaced theirs). */
  private async askUnder(parent: FrameRoot): Promise<void> {
    const tree = await this.frameTree();
    for (const root of this.roots()) {
      if (root !== parent && this.nearestAbove(root, tree) === parent) void this.ask(root);
    }
  }

  /** One request in flight per frame; asked again meanwhile, it asks once more when that one ends. */
  private async ask(root: FrameRoot): Promise<void> {
    if (root.asking) {
      root.askAgain = true;
      return;
    }
    root.asking = true;
    try {
      do {
        root.askAgain = false;
        await this.askOnce(root);
      } while (root.askAgain && this.alive(root));
    } finally {
      root.asking = false;
    }
  }

  private async askOnce(root: FrameRoot): Promise<void> {
    // What it sends before its new snapshot belongs to a document the viewer no longer has.
    root.remap = null;
    root.pending = null;
    root.snapshotted = false;
    let owner = await this.ownerOf(root);
    // Not found although the recorder above is in the stream: a call that failed on the way (a
    // process swap, a frame tree changing), or an `<iframe>` not recorded. Tried a few more times.
    for (const ms of RETRY_MS) {
      if (owner !== null || !this.alive(root)) break;
      await new Promise((resolve) => setTimeout(resolve, ms));
      owner = await this.ownerOf(root);
    }
    if (owner === null || owner === 'wait' || !this.alive(root)) return;
    root.pending = { base: root.base, owner };
    for (const ms of [0, ...RETRY_MS]) {
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
      if (!this.alive(root) || root.pending === null) return;
      // Its mark comes before the answer: still pending, the checkpoint did not run (its document was being replaced, say).
      await this.evaluate(root.target, root.contextId, 'globalThis.__domcast?.checkpoint()');
    }
  }

  /**
   * The stream's id of the `<iframe>` holding `root`'s document; 'wait' while the recorder above it
   * has not sent its snapshot (its mark asks again); null when it was not found (the `<iframe>` is
   * not recorded, inside a blocked region say, or a call failed). Asking for it makes that recorder
   * send what it buffered first, so the `<iframe>` reaches the stream before what is attached to it.
   */
  private async ownerOf(root: FrameRoot): Promise<number | 'wait' | null> {
    const tree = await this.frameTree();
    const parentFrame = tree.parent.get(root.frameId);
    const host = parentFrame === undefined ? undefined : tree.host.get(parentFrame);
    if (!host) return null;
    const above = this.nearestAbove(root, tree);
    let base: number;
    if (above === 'top') {
      if (!this.topSnapshotted) return 'wait';
      base = 0;
    } else if (above && above.snapshotted && above.remap) base = above.base;
    else return 'wait';
    const id = await this.withTimeout(async () => {
      const { backendNodeId } = await host.cdp.send('DOM.getFrameOwner', { frameId: root.frameId });
      const { object } = await host.cdp.send('DOM.resolveNode', { backendNodeId, objectGroup: 'domcast-frames' });
      if (!object.objectId) return null;
      try {
        const { result } = await host.cdp.send('Runtime.callFunctionOn', { objectId: object.objectId, functionDeclaration: ID_OF_OWNER, returnByValue: true });
        return result.value as unknown;
      } finally {
        void host.cdp.send('Runtime.releaseObjectGroup', { objectGroup: 'domcast-frames' }).catch(() => undefined);
      }
    });
    if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0 || id >= FRAME_ID_SPAN) return null;
    return base + id;
  }

  /** The recorded frame nearest above `root`: 'top', another frame that records itself, or null (not known). */
  private nearestAbove(root: FrameRoot, tree: FrameTree): FrameRoot | 'top' | null {
    const byFrame = new Map(this.roots().map((r) => [r.frameId, r]));
    let frame = tree.parent.get(root.frameId);
    for (let i = 0; frame !== undefined && i < 64; i++) {
      if (frame === this.mainFrameId) return 'top';
      const found = byFrame.get(frame);
      if (found) return found;
      frame = tree.parent.get(frame);
    }
    return null;
  }

  /** Every frame's parent, and the session whose process holds each frame's document, from each session's frame tree. */
  private async frameTree(): Promise<FrameTree> {
    const tree: FrameTree = { parent: new Map(), host: new Map() };
    await Promise.all(
      [...this.targets].map(async (target) => {
        const got = await this.withTimeout(() => target.cdp.send('Page.getFrameTree'));
        if (!got) {
          // Its frame went away (or elsewhere): the session is dead, and so are its frames' recordings.
          if (target.targetId !== undefined) {
            this.targets.delete(target);
            this.targetIds.delete(target.targetId);
            target.roots.clear();
            void target.cdp.detach().catch(() => undefined);
          }
          return;
        }
        const stack = [got.frameTree];
        while (stack.length > 0) {
          const node = stack.pop()!;
          tree.host.set(node.frame.id, target);
          if (node.frame.parentId) tree.parent.set(node.frame.id, node.frame.parentId);
          stack.push(...(node.childFrames ?? []));
        }
      }),
    );
    return tree;
  }

  private async evaluate(target: Target, contextId: number, expression: string): Promise<void> {
    await this.withTimeout(() => target.cdp.send('Runtime.evaluate', { contextId, expression, awaitPromise: true }));
  }

  /** A frame that never answers (or a session that closed) must not hold anything up: null then. */
  private async withTimeout<T>(call: () => Promise<T>): Promise<T | null> {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), FRAME_CALL_TIMEOUT_MS)));
    try {
      return await Promise.race([call().catch(() => null), gaveUp]);
    } finally {
      clearTimeout(timer);
    }
  }
}

interface FrameTree {
  parent: Map<string, string>;
  host: Map<string, Target>;
}
