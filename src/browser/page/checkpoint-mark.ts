/**
 * Sent by a page's recorder through the binding right before the snapshot of a `checkpoint()`
 * (recorder-entry.ts): not JSON, so never a batch. Shared by the page bundle and the server.
 */
export const CHECKPOINT_MARK = 'domcast:checkpoint';

/**
 * Sent by a recorder right after each FullSnapshot it sent (a new document, a checkpoint): the
 * cross-origin frames under it must send theirs again, since the viewer rebuilds the page from it.
 */
export const SNAPSHOT_MARK = 'domcast:snapshot';

/**
 * Sent by the recorder of a frame that records itself (its parent cannot read it: another origin)
 * once the binding is there: it waits for the server's `checkpoint()` to start.
 */
export const FRAME_HELLO = 'domcast:frame';
