import { EventType, IncrementalSource, type Replayer } from 'rrweb';

/**
 * Canvases, shown by the viewer itself. The replay iframe is sandboxed without scripts, and in a
 * document without scripts a <canvas> shows its fallback content, never its pixels (HTML spec):
 * whatever rrweb draws into it, the snapshot's `rr_dataURL` included, stays invisible. rrweb's
 * answer, `UNSAFE_replayCanvas`, lets the recorded page's scripts run. Instead the recorder samples
 * each canvas (2D and WebGL alike) a few times a second as a WebP picture (a CanvasMutation whose
 * commands are `clearRect` and `drawImage(ImageBitmap(Blob(bytes)))`), and this plugin, running in
 * the viewer's own script, shows the latest picture of each canvas as the element's CSS background.
 * The replay iframe stays script-free. Any other canvas command (call-by-call 2D or WebGL
 * recording) is ignored, as before.
 */

interface SerializedArg {
  rr_type?: string;
  args?: SerializedArg[];
  data?: SerializedArg[];
  base64?: string;
  type?: string;
}

interface SerializedNode {
  type?: number;
  id?: number;
  tagName?: string;
  attributes?: Record<string, unknown>;
  childNodes?: SerializedNode[];
}

/** Only a picture, as base64: the page chose the bytes, and they end up inside a CSS url(). */
const PICTURE = /^data:image\/(webp|png|jpeg);base64,[A-Za-z0-9+/]+=*$/;

/** The picture `arg` holds as a data URL, when it is ImageBitmap(Blob([ArrayBuffer…]), …) as rrweb's sampler writes it. */
export function pictureOf(arg: unknown): string | null {
  const bitmap = arg as SerializedArg | null;
  if (bitmap?.rr_type !== 'ImageBitmap') return null;
  const blob = bitmap.args?.[0];
  if (blob?.rr_type !== 'Blob' || !Array.isArray(blob.data) || blob.data.length === 0) return null;
  const pieces: string[] = [];
  for (const piece of blob.data) {
    if (piece?.rr_type !== 'ArrayBuffer' || typeof piece.base64 !== 'string') return null;
    pieces.push(piece.base64);
  }
  // Pieces are each padded base64: joined as bytes, then encoded again (one piece, the sampler's case, as it is).
  const base64 = pieces.length === 1 ? pieces[0]! : btoa(pieces.map((p) => atob(p)).join(''));
  const type = typeof blob.type === 'string' ? blob.type : 'image/webp';
  const url = `data:${type};base64,${base64}`;
  return PICTURE.test(url) ? url : null;
}

/** A canvas's serialized picture (the snapshot's `rr_dataURL`), when it is one. */
function snapshotPicture(node: SerializedNode): string | null {
  const url = node.attributes?.rr_dataURL;
  return node.tagName === 'canvas' && typeof url === 'string' && PICTURE.test(url) ? url : null;
}

export function canvasPlugin(): { handler: (event: unknown, isSync: boolean, context: { replayer: Replayer }) => void } {
  /** The latest picture of each canvas, by rrweb id. */
  const pictures = new Map<number, string>();
  /** Pictures whose canvas is not in the real DOM yet: while seeking, rrweb builds a virtual DOM and writes it out at the end. */
  const waiting = new Set<number>();
  let retry: ReturnType<typeof setTimeout> | undefined;

  const show = (replayer: Replayer, id: number): void => {
    const url = pictures.get(id);
    if (!url) return;
    const node = replayer.getMirror().getNode(id) as HTMLElement | null;
    if (!node || node.nodeName !== 'CANVAS' || !node.isConnected) {
      waiting.add(id);
      retry ??= setTimeout(() => {
        retry = undefined;
        const ids = [...waiting];
        waiting.clear();
        // Once: a canvas still missing then was removed, and its picture waits for its next frame.
        for (const i of ids) if (replayer.getMirror().getNode(i)?.isConnected) show(replayer, i);
      }, 0);
      return;
    }
    node.style.setProperty('background', `url("${url}") center / 100% 100% no-repeat`, 'important');
    // Drawn as fallback content, a canvas sized only by its width/height attributes has no box: give it theirs.
    const view = node.ownerDocument.defaultView;
    if (view && node.getBoundingClientRect().width === 0) {
      const canvas = node as HTMLCanvasElement;
      if (view.getComputedStyle(node).display === 'inline') node.style.setProperty('display', 'inline-block');
      node.style.setProperty('width', `${canvas.width}px`);
      node.style.setProperty('height', `${canvas.height}px`);
    }
  };

  /** Finds canvases with a picture in a serialized tree (iteratively: trees can be deep). */
  const collect = (root: SerializedNode | undefined, found: number[]): void => {
    const stack = root ? [root] : [];
    while (stack.length > 0) {
      const n = stack.pop()!;
      const url = snapshotPicture(n);
      if (url && typeof n.id === 'number') {
        pictures.set(n.id, url);
        found.push(n.id);
      }
      if (Array.isArray(n.childNodes)) stack.push(...n.childNodes);
    }
  };

  return {
    handler(event, _isSync, { replayer }) {
      const e = event as { type?: number; data?: Record<string, unknown> };
      const data = e.data ?? {};
      const ids: number[] = [];
      if (e.type === EventType.FullSnapshot) {
        pictures.clear();
        waiting.clear();
        collect(data.node as SerializedNode | undefined, ids);
      } else if (e.type === EventType.IncrementalSnapshot && data.source === IncrementalSource.Mutation) {
        for (const add of (data.adds as { node?: SerializedNode }[] | undefined) ?? []) collect(add?.node, ids);
        // A canvas whose style attribute the page changed loses its picture: show it again.
        for (const a of (data.attributes as { id?: number }[] | undefined) ?? []) if (typeof a?.id === 'number' && pictures.has(a.id)) ids.push(a.id);
        for (const r of (data.removes as { id?: number }[] | undefined) ?? []) if (typeof r?.id === 'number') pictures.delete(r.id);
      } else if (e.type === EventType.IncrementalSnapshot && data.source === IncrementalSource.CanvasMutation && typeof data.id === 'number') {
        const commands = (data.commands as { property?: string; args?: unknown[] }[] | undefined) ?? [data as { property?: string; args?: unknown[] }];
        for (const c of commands) {
          const url = c?.property === 'drawImage' && Array.isArray(c.args) ? pictureOf(c.args[0]) : null;
          if (url) {
            pictures.set(data.id, url);
            ids.push(data.id);
          }
        }
      }
      for (const id of ids) show(replayer, id);
    },
  };
}
