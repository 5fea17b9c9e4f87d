/**
 * What the CSP and the sandbox cannot stop. An <iframe src> to another host is refused by
 * `frame-src`, but Chromium has already opened a TCP connection to that host by then, telling it
 * that someone is watching. rrweb never records an iframe's `src` (it keeps it as `rr_src` and
 * rebuilds the content itself), so one in an event was put there by a hostile page calling the
 * binding or by a foreign recording: it is dropped before rrweb sees it, as is `srcdoc`, whose HTML
 * could hold such an iframe. And the replay is made inert, so keyboard focus cannot follow a link.
 */
import { EventType, IncrementalSource, type Replayer } from 'rrweb';
import type { WireEvent } from '../protocol/index.js';

interface SerializedNode {
  id?: number;
  tagName?: string;
  attributes?: Record<string, unknown>;
  childNodes?: SerializedNode[];
}

interface MutationData {
  source: number;
  adds?: { node: SerializedNode }[];
  attributes?: { id: number; attributes: Record<string, unknown> }[];
}

const FRAMES = new Set(['iframe', 'frame']);
const NAVIGATING = new Set(['src', 'srcdoc']);

/**
 * Drops the attributes that make a frame load something. Names are compared without case: a page
 * can record `SRC` (setAttributeNS keeps the case it is given) and rrweb's setAttribute lower-cases
 * it on the way into the replay, where it loads like `src`.
 */
function dropNavigating(attributes: Record<string, unknown> | undefined): void {
  if (!attributes) return;
  for (const name of Object.keys(attributes)) if (NAVIGATING.has(name.toLowerCase())) delete attributes[name];
}

/** Returns a cleaner for one Replayer's event stream (it remembers which node ids are frames, for attribute changes). */
export function eventCleaner(): (event: WireEvent) => WireEvent {
  const frames = new Set<number>();
  const walk = (node: SerializedNode): void => {
    if (node.tagName !== undefined && FRAMES.has(node.tagName.toLowerCase())) {
      if (node.id !== undefined) frames.add(node.id);
      dropNavigating(node.attributes);
    }
    node.childNodes?.forEach(walk);
  };
  return (event) => {
    if (event.type === EventType.FullSnapshot) {
      frames.clear();
      walk((event.data as { node: SerializedNode }).node);
    } else if (event.type === EventType.IncrementalSnapshot) {
      const data = event.data as MutationData;
      if (data.source !== IncrementalSource.Mutation) return event;
      data.adds?.forEach((a) => walk(a.node));
      for (const change of data.attributes ?? []) {
        if (frames.has(change.id)) dropNavigating(change.attributes);
      }
    }
    return event;
  };
}

/** No focus, click or key reaches the replayed page: it is a picture of a page, not a page to use. */
export function makeInert(replayer: Replayer): void {
  replayer.iframe.inert = true;
}
