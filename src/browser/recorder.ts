import type { BrowserContext, Page } from 'playwright-core';
import { DomcastError, readBuiltAsset } from '../common/index.js';
import type { FrameRemap } from '../protocol/index.js';
import { CrossOriginFrames } from './frames.js';
import { CHECKPOINT_MARK, SNAPSHOT_MARK } from './page/checkpoint-mark.js';
import type { PageRecorderConfig } from './page/recorder-entry.js';

export type VisualQuality = 'standard' | 'high';

/** Per-run privacy controls (elements marked `data-domcast-private` are always blocked on top of these). */
export interface PrivacyOptions {
  /** Every field's value (hidden inputs, textareas and selects included) is recorded as asterisks. */
  maskAllInputs: boolean;
  /** Text inside matching elements, and the values of fields there, are recorded as asterisks. */
  maskTextSelector?: string;
  /** Matching elements are recorded as empty placeholders of the same size. */
  blockSelector?: string;
}

/** Elements carrying this attribute are never recorded, whatever the run asks (only a same-size placeholder is). */
export const PRIVATE_ATTRIBUTE = 'data-domcast-private';

/** Raised before a run's first step when one of its privacy selectors is not valid CSS. */
export class PrivacySelectorError extends DomcastError {
  constructor(message: string) {
    super('PRIVACY_SELECTOR_INVALID', message);
  }
}

/** What rrweb blocks: the private attribute always, plus the run's own selector. */
export function blockedSelector(privacy: PrivacyOptions): string {
  const ours = `[${PRIVATE_ATTRIBUTE}]`;
  return privacy.blockSelector ? `${ours}, ${privacy.blockSelector}` : ours;
}

/**
 * CSS selectors of what a screenshot must cover so it shows no more than the recording does:
 * blocked elements, masked text and, with maskAllInputs, every form field.
 */
export function screenshotMasks(privacy: PrivacyOptions): string[] {
  return [
    blockedSelector(privacy),
    ...(privacy.maskTextSelector ? [privacy.maskTextSelector] : []),
    ...(privacy.maskAllInputs ? ['input, textarea, select'] : []),
  ];
}

/**
 * Checks the run's selectors with the browser's own parser, before anything is recorded: rrweb
 * swallows a bad maskTextSelector (the text would then be recorded in clear) and throws from its
 * observers on a bad blockSelector (recording would stop). Node has no CSS parser of its own here.
 */
export async function checkPrivacySelectors(page: Page, privacy: PrivacyOptions): Promise<void> {
  const fields = [
    ['block_selector', privacy.blockSelector],
    ['mask_text_selector', privacy.maskTextSelector],
  ] as const;
  for (const [field, selector] of fields) {
    if (selector === undefined) continue;
    const problem = await page.evaluate((sel) => {
      try {
        document.createDocumentFragment().querySelector(sel);
        return null;
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
    }, selector);
    if (problem !== null) throw new PrivacySelectorError(`${field}: not a valid CSS selector (${JSON.stringify(selector)}): ${problem}`);
  }
}

type MaskInputOptions = NonNullable<PageRecorderConfig['options']['maskInputOptions']>;

/** Every kind of field whose value rrweb can mask; rrweb's own maskAllInputs forgets hidden inputs. */
const EVERY_FIELD: MaskInputOptions = Object.assign(
  {
    color: true, date: true, 'datetime-local': true, email: true, month: true, number: true, range: true, search: true,
    tel: true, text: true, time: true, url: true, week: true, textarea: true, select: true, password: true,
  },
  { hidden: true },
);

/**
 * Field masking. Passwords always; every field with maskAllInputs. With a maskTextSelector, fields
 * inside a masked element are masked too (the page decides per element, see recorder-entry): a
 * value typed into a masked area is as private as its text. A <select> there keeps its value, since
 * masking it would drop which option is chosen; use maskAllInputs or blockSelector for that.
 */
function fieldMasking(privacy: PrivacyOptions): Pick<PageRecorderConfig, 'maskInputsWithin'> & { maskInputOptions: MaskInputOptions } {
  if (privacy.maskAllInputs) return { maskInputOptions: EVERY_FIELD };
  if (privacy.maskTextSelector) return { maskInputOptions: { ...EVERY_FIELD, select: false }, maskInputsWithin: privacy.maskTextSelector };
  return { maskInputOptions: { password: true } };
}

/** The one binding through which a page hands batches of rrweb events to the server. */
export const RECORDER_BINDING = '__domcastEmit';

/**
 * Batching: what a task emits leaves at the end of that task when the page was quiet for FLUSH_MS;
 * on a busy page, events wait for the rest of FLUSH_MS after the last batch and leave together, so
 * a page makes at most one call per FLUSH_MS besides full batches (recorder-entry.ts).
 */
const FLUSH_MS = 10;
const MAX_BATCH = 500;

/** How long the server waits for the page to flush or take a snapshot before it goes on without. */
const PAGE_CALL_TIMEOUT_MS = 5000;

/**
 * How the viewer gets the page's images: `inline`, as data URLs drawn by the recorder through a
 * canvas (blank for cross-origin images without CORS headers, and heavy in the stream); `captured`,
 * from the bodies the run's browser received, which the server keeps and serves (src/assets).
 */
export type ImageSource = 'inline' | 'captured';

function recordOptions(quality: VisualQuality, privacy: PrivacyOptions, maskInputOptions: MaskInputOptions, images: ImageSource): PageRecorderConfig['options'] {
  const common = {
    // Passwords stay masked in every case (see fieldMasking).
    maskInputOptions,
    blockSelector: blockedSelector(privacy),
    ...(privacy.maskTextSelector ? { maskTextSelector: privacy.maskTextSelector } : {}),
    // What a viewer never needs and a hostile page would like replayed: scripts (else rrweb keeps
    // the element, its text replaced by a placeholder), comments, <meta http-equiv> (refresh, CSP,
    // cookies), favicons and verification tokens (csrf-token metas).
    slimDOMOptions: { script: true, comment: true, headFavicon: true, headMetaHttpEquiv: true, headMetaVerification: true },
    inlineStylesheet: true,
    // Viewers must not fetch from the recorded site: images travel as data URLs, or are captured.
    inlineImages: images === 'inline',
    collectFonts: false,
  };
  if (quality === 'high') {
    return {
      ...common,
      // Canvases as pictures ten times a second (see below).
      recordCanvas: true,
      sampling: { mousemove: 0, mousemoveCallback: 50, scroll: 16, input: 'all', canvas: 10 },
      dataURLOptions: { type: 'image/webp', quality: 0.7 },
    };
  }
  return {
    ...common,
    // Canvases (2D and WebGL) as pictures, twice a second, and only when they changed: the viewer
    // draws them itself (src/viewer/canvas.ts), never call by call.
    recordCanvas: true,
    // input: 'all': 'last' records only on change (blur), so a viewer would not see typing as it happens.
    sampling: { mousemove: 50, mousemoveCallback: 100, scroll: 100, input: 'all', canvas: 2 },
    dataURLOptions: { type: 'image/webp', quality: 0.5 },
  };
}

let bundle: string | undefined;

/** The init script: config, then the rrweb bundle (guarded to start once, in the top frame). */
export function recorderScript(quality: VisualQuality, privacy: PrivacyOptions, images: ImageSource = 'inline'): string {
  bundle ??= readBuiltAsset('page/recorder.js');
  const { maskInputOptions, ...within } = fieldMasking(privacy);
  const config: PageRecorderConfig = {
    bindingName: RECORDER_BINDING,
    flushMs: FLUSH_MS,
    maxBatch: MAX_BATCH,
    ...within,
    options: recordOptions(quality, privacy, maskInputOptions, images),
  };
  return `window.__domcastConfig = ${JSON.stringify(config)};\n${bundle}`;
}

export interface RecorderHandle {
  /** Pushes out whatever the page still buffers; resolves once the server has received it. */
  flush(): Promise<void>;
  /** Asks the page for a fresh Meta + FullSnapshot (a new checkpoint). */
  takeFullSnapshot(): Promise<void>;
}

/** The recording of one page (tab) of a run; only the tab the session shows is `live`. */
export interface PageRecorder extends RecorderHandle {
  readonly page: Page;
  /** False while this tab is not the one the session shows: its batches are dropped. */
  readonly live: boolean;
  /**
   * Makes this tab's recording the session's: drops what the page sent before, takes everything
   * after a fresh Meta + FullSnapshot. Resolves once that snapshot is delivered.
   */
  checkpoint(): Promise<void>;
  /** Another tab is shown now: drop this one's batches. */
  mute(): void;
}

/**
 * The run's recorder script, for every document of every page of `context` (tabs and popups
 * included), injected before the documents' own scripts. Throws PrivacySelectorError, before
 * anything is recorded, when a privacy selector is not valid CSS (checked in `page`).
 */
export async function installRecorder(
  context: BrowserContext,
  page: Page,
  quality: VisualQuality,
  privacy: PrivacyOptions,
  images: ImageSource = 'inline',
): Promise<void> {
  await checkPrivacySelectors(page, privacy);
  await context.addInitScript({ content: recorderScript(quality, privacy, images) });
}

/**
 * Takes the batches of `page`'s recorder. Each batch arrives as the JSON text of an array of rrweb
 * events; only the top frame's main world is heard, and only while the recorder is live. Frames
 * that record themselves (cross-origin ones) are heard through the binding of their own window
 * (frames.ts): their batches come with `frame`, where they go in the page's stream.
 */
export async function recordPage(context: BrowserContext, page: Page, onBatch: (json: string, frame?: FrameRemap) => Promise<void>, live = true): Promise<PageRecorder> {
  // A raw DevTools binding, not Playwright's exposeBinding: a batch crosses the pipe escaped once and
  // is parsed once here, with no answer sent back to the page per batch (Playwright wraps each call in
  // a JSON envelope, parses it twice and evaluates its result back into the page). Only calls from
  // the top frame's main world are taken.
  const cdp = await context.newCDPSession(page);
  const { frameTree } = await cdp.send('Page.getFrameTree');
  const mainFrameId = frameTree.frame.id;
  const mainWorld = new Set<number>();
  let awaitingMark = false;
  // Batches being taken in; flush() waits for them, so that it means delivered.
  const inflight = new Set<Promise<void>>();
  const take = (payload: string, frame?: FrameRemap): void => {
    if (!live) return;
    const taken: Promise<void> = onBatch(payload, frame)
      .catch(() => undefined)
      .finally(() => inflight.delete(taken));
    inflight.add(taken);
  };
  const frames = new CrossOriginFrames(context, mainFrameId, RECORDER_BINDING, { take });
  const pageTarget = frames.watch(cdp);
  cdp.on('Runtime.executionContextCreated', ({ context: created }) => {
    const aux = created.auxData as { frameId?: string; isDefault?: boolean } | undefined;
    if (aux?.isDefault === true && aux.frameId === mainFrameId) mainWorld.add(created.id);
  });
  cdp.on('Runtime.executionContextDestroyed', ({ executionContextId }) => {
    if (mainWorld.delete(executionContextId)) frames.topGone();
  });
  cdp.on('Runtime.executionContextsCleared', () => {
    mainWorld.clear();
    frames.topGone();
  });
  cdp.on('Runtime.bindingCalled', ({ name, payload, executionContextId }) => {
    if (name !== RECORDER_BINDING) return;
    // Frames in the page's process (cross-origin ones of the same site) have the binding too.
    if (!mainWorld.has(executionContextId)) return frames.called(pageTarget, executionContextId, payload);
    if (payload === CHECKPOINT_MARK) {
      // What follows is the fresh snapshot checkpoint() asked for: from here on this tab is shown.
      if (awaitingMark) [awaitingMark, live] = [false, true];
      return;
    }
    if (payload === SNAPSHOT_MARK) return frames.topSnapshot();
    take(payload);
  });
  await cdp.send('Runtime.enable');
  await cdp.send('Runtime.addBinding', { name: RECORDER_BINDING });
  frames.greet(pageTarget);
  // Cross-site frames run in processes of their own: each gets a session with the binding.
  page.on('framenavigated', (frame) => {
    if (frame !== page.mainFrame()) void frames.adopt(frame);
  });
  for (const frame of page.frames()) if (frame !== page.mainFrame()) void frames.adopt(frame);
  const callPage = async (fn: 'flush' | 'takeFullSnapshot' | 'checkpoint'): Promise<void> => {
    if (page.isClosed()) return;
    let timer: NodeJS.Timeout | undefined;
    // A page that breaks what evaluate relies on (its own JSON, its promises) must not hold the run: we stop waiting.
    const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, PAGE_CALL_TIMEOUT_MS)));
    const call = page
      .evaluate(async (name) => {
        await window.__domcast?.[name]();
      }, fn)
      .catch(() => undefined) // the page may be navigating or gone; the next document records afresh
      .then(() => (fn === 'flush' ? frames.flush() : undefined))
      // The page's calls during it arrived before its answer: once they are in, what it flushed is delivered.
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => Promise.all([...inflight]))
      .then(() => undefined);
    await Promise.race([call, gaveUp]);
    clearTimeout(timer);
  };
  return {
    page,
    get live() {
      return live;
    },
    flush: () => callPage('flush'),
    takeFullSnapshot: () => callPage('takeFullSnapshot'),
    async checkpoint() {
      live = false;
      awaitingMark = true;
      await callPage('checkpoint');
      // No mark (the page was between documents, or will not answer): show it anyway; its next
      // document starts with a snapshot of its own.
      if (awaitingMark) [awaitingMark, live] = [false, true];
    },
    mute() {
      live = false;
      awaitingMark = false;
    },
  };
}

/** installRecorder and recordPage for a run of one page. */
export async function attachRecorder(
  context: BrowserContext,
  page: Page,
  quality: VisualQuality,
  privacy: PrivacyOptions,
  onBatch: (json: string) => Promise<void>,
  images: ImageSource = 'inline',
): Promise<PageRecorder> {
  await checkPrivacySelectors(page, privacy);
  const recorder = await recordPage(context, page, onBatch);
  await context.addInitScript({ content: recorderScript(quality, privacy, images) });
  return recorder;
}
