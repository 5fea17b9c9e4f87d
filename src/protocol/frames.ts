/**
 * Cross-origin frames in a page's stream. The top frame's recorder cannot read a cross-origin
 * frame's document, so that frame records itself; its events join the page's stream with every id
 * `n` of its own moved to `base + n`, a range no other document of the session uses, and its
 * snapshots attached to its `<iframe>` element, `owner` (src/session/frame-remap.ts). Viewers see
 * ordinary rrweb events; ids from FRAME_ID_SPAN up are those of such frames.
 */
export interface FrameRemap {
  /** Added to each of the frame's own ids: a multiple of FRAME_ID_SPAN, never 0 (the top frame's range). */
  base: number;
  /** The id, in the stream, of the `<iframe>` element the frame's document belongs in. */
  owner: number;
}

/** Ids a frame's own document may use: 1 to FRAME_ID_SPAN - 1 (an event naming another is dropped). */
export const FRAME_ID_SPAN = 2 ** 32;
