/**
 * A cross-origin frame's events, as they belong in its page's stream (src/protocol/frames.ts): the
 * remap holds no state, only the frame's two numbers, so it runs wherever the batch is prepared (on
 * the event loop or in an ingest worker), and a frame's events can touch nothing outside its range.
 */
import { FRAME_ID_SPAN, RrwebEventType, type FrameRemap, type WireEvent } from '../protocol/index.js';

/** rrweb's IncrementalSource values (from @rrweb/types). */
const Source = {
  Mutation: 0,
  MouseMove: 1,
  MouseInteraction: 2,
  Scroll: 3,
  ViewportResize: 4,
  Input: 5,
  TouchMove: 6,
  MediaInteraction: 7,
  StyleSheetRule: 8,
  CanvasMutation: 9,
  Font: 10,
  Drag: 12,
  StyleDeclaration: 13,
  Selection: 14,
  AdoptedStyleSheet: 15,
  CustomElement: 16,
} as const;

/** rrweb-snapshot's NodeType.Document. */
const DOCUMENT_NODE = 0;

/** rrweb gives a recording's own document the first id (rrweb-snapshot's getRootId relies on it too). */
const DOCUMENT_ID = 1;

type Json = Record<string, unknown>;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Thrown inside the remap when an id is outside the frame's range: the event is dropped. */
class OutOfRange extends Error {}

class Remap {
  constructor(private readonly frame: FrameRemap) {}

  /** One id: rrweb's "none" values (-1, 0, null) stay as they are. */
  id(v: unknown): unknown {
    if (typeof v !== 'number' || v <= 0) return v;
    if (!Number.isInteger(v) || v >= FRAME_ID_SPAN) throw new OutOfRange();
    return this.frame.base + v;
  }

  keys(holder: unknown, keys: readonly string[]): void {
    if (!isRecord(holder)) return;
    for (const key of keys) {
      const v = holder[key];
      if (Array.isArray(v)) holder[key] = v.map((x) => this.id(x));
      else if (key in holder) holder[key] = this.id(v);
    }
  }

  list(items: unknown, keys: readonly string[]): void {
    if (Array.isArray(items)) for (const item of items) this.keys(item, keys);
  }

  /**
   * A serialized node and its descendants, without recursion: ids and rootIds move into the
   * frame's range, and nodes that name no document get the frame's, as rrweb's own
   * CrossOriginIframeMirror does (the replayer builds them in that document).
   */
  tree(root: unknown): void {
    const rootId = this.frame.base + DOCUMENT_ID;
    const stack: unknown[] = [root];
    while (stack.length > 0) {
      const node = stack.pop();
      if (!isRecord(node)) continue;
      this.keys(node, ['id', 'rootId']);
      if (node.type !== DOCUMENT_NODE && !node.rootId) node.rootId = rootId;
      if (Array.isArray(node.childNodes)) for (const child of node.childNodes as unknown[]) stack.push(child);
    }
  }

  mutation(data: Json): void {
    if (Array.isArray(data.adds)) {
      for (const add of data.adds as unknown[]) {
        this.keys(add, ['parentId', 'nextId', 'previousId']);
        if (isRecord(add)) this.tree(add.node);
      }
    }
    this.list(data.removes, ['parentId', 'id']);
    this.list(data.attributes, ['id']);
    this.list(data.texts, ['id']);
  }

  incremental(data: Json): boolean {
    switch (data.source) {
      case Source.Mutation:
        this.mutation(data);
        return true;
      case Source.MouseMove:
      case Source.TouchMove:
      case Source.Drag:
        this.list(data.positions, ['id']);
        return true;
      case Source.MouseInteraction:
      case Source.Scroll:
      case Source.Input:
      case Source.MediaInteraction:
      case Source.CanvasMutation:
        this.keys(data, ['id']);
        return true;
      case Source.StyleSheetRule:
      case Source.StyleDeclaration:
        // Stylesheet ids are numbered from 1 in each recording too: the same range keeps them apart.
        this.keys(data, ['id', 'styleId']);
        return true;
      case Source.Selection:
        this.list(data.ranges, ['start', 'end']);
        return true;
      case Source.AdoptedStyleSheet:
        this.keys(data, ['id', 'styleIds']);
        this.list(data.styles, ['styleId']);
        return true;
      case Source.Font:
      case Source.CustomElement:
        return true;
      default:
        // ViewportResize is the frame's own window (the top frame's says how big the page is), and
        // a source we do not know could carry ids we would not move.
        return false;
    }
  }
}

/**
 * One event of a frame that records itself, as it belongs in its page's stream, changed in place:
 * its FullSnapshot becomes the mutation that attaches its document to `owner` (as rrweb's own
 * cross-origin iframe support does), its incremental events get their ids moved into the frame's
 * range. Null for what has no place there: Meta, Load and DomContentLoaded (the top frame's say
 * where the page is), viewport resizes, custom and plugin events, unknown sources, and any event
 * naming an id outside the frame's range.
 */
export function remapFrameEvent(event: WireEvent, frame: FrameRemap): WireEvent | null {
  const remap = new Remap(frame);
  const data = event.data;
  if (!isRecord(data)) return null;
  try {
    if (event.type === RrwebEventType.FullSnapshot) {
      remap.tree(data.node);
      return {
        type: RrwebEventType.IncrementalSnapshot,
        timestamp: event.timestamp,
        data: { source: Source.Mutation, adds: [{ parentId: frame.owner, nextId: null, node: data.node }], removes: [], texts: [], attributes: [], isAttachIframe: true },
      };
    }
    if (event.type === RrwebEventType.IncrementalSnapshot) return remap.incremental(data) ? event : null;
    return null;
  } catch (err) {
    if (err instanceof OutOfRange) return null;
    throw err;
  }
}
