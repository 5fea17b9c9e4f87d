/**
 * `<domcast-viewer src="…viewer link…">`: a live (or replayed) domcast run inside any page, as an
 * iframe of the viewer in embed mode, sized by the element. The page gets what happens as DOM events
 * on the element: `domcast-status`, `domcast-step`, `domcast-error` (details in messages.ts).
 *
 * Attributes: `src` (a viewer link, http or https), `controls` (show the replay/rewind controls),
 * `hide-status` (no status overlay over the page), `title` (the frame's accessible name, default
 * "domcast live view"), `timeout` (ms to wait for the viewer before `domcast-error` no-answer,
 * default 10000).
 *
 * Served by domcast at /embed/domcast-viewer.js as an ES module (scripts/build.mjs).
 */
import {
  EMBED_CHANNEL,
  EMBED_VERSION,
  isViewerMessage,
  type EmbedErrorDetail,
  type EmbedStatusDetail,
  type HelloMessage,
  type ViewerMessage,
} from './messages.js';
import { embedUrl } from './url.js';

const STYLE = `:host{display:block;position:relative;aspect-ratio:16/9;min-height:120px;overflow:hidden;background:#0f172a;contain:content}
:host([hidden]){display:none}
iframe{position:absolute;inset:0;width:100%;height:100%;border:0;display:block}`;

const DEFAULT_TIMEOUT_MS = 10_000;

export class DomcastViewerElement extends HTMLElement {
  static readonly observedAttributes = ['src', 'controls', 'hide-status', 'title'];

  readonly #frame: HTMLIFrameElement;
  /** The origin the current frame was pointed at: the only one whose messages count. */
  #viewerOrigin: string | null = null;
  #answered = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #status: EmbedStatusDetail | null = null;
  /** Step states already told (`index:state`): a viewer that reloads tells them again; the page hears each once. */
  readonly #stepsTold = new Set<string>();
  readonly #onMessage = (e: MessageEvent) => this.#receive(e);

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = STYLE;
    this.#frame = document.createElement('iframe');
    this.#frame.setAttribute('referrerpolicy', 'no-referrer');
    this.#frame.addEventListener('load', () => this.#hello());
    root.append(style, this.#frame);
  }

  /** The latest `domcast-status` detail, or null before the viewer answered. */
  get status(): EmbedStatusDetail | null {
    return this.#status;
  }

  connectedCallback(): void {
    window.addEventListener('message', this.#onMessage);
    this.#load();
  }

  disconnectedCallback(): void {
    window.removeEventListener('message', this.#onMessage);
    clearTimeout(this.#timer);
  }

  attributeChangedCallback(name: string, before: string | null, after: string | null): void {
    if (before === after || !this.isConnected) return;
    if (name === 'title') this.#frame.title = after ?? 'domcast live view';
    else this.#load();
  }

  #load(): void {
    this.#frame.title = this.getAttribute('title') ?? 'domcast live view';
    const src = this.getAttribute('src');
    clearTimeout(this.#timer);
    this.#answered = false;
    this.#status = null;
    this.#stepsTold.clear();
    if (src === null) return;
    const url = embedUrl(src, document.baseURI, { controls: this.hasAttribute('controls'), hideStatus: this.hasAttribute('hide-status') });
    if (!url) {
      this.#viewerOrigin = null;
      this.#frame.removeAttribute('src');
      this.#emit('error', { code: 'bad-src', message: 'src must be an http or https viewer link' });
      return;
    }
    this.#viewerOrigin = url.origin;
    if (this.#frame.src !== url.href) this.#frame.src = url.href;
    const timeout = Number(this.getAttribute('timeout') ?? DEFAULT_TIMEOUT_MS);
    this.#timer = setTimeout(() => {
      if (this.#answered) return;
      this.#emit('error', {
        code: 'no-answer',
        message: `the viewer did not answer: the link may be wrong or expired, or this page's origin (${location.origin}) may not embed it (VIEWER_ORIGINS)`,
      });
    }, Number.isFinite(timeout) && timeout > 0 ? timeout : DEFAULT_TIMEOUT_MS);
  }

  /** Tells the viewer, and only a frame on the viewer's origin, who its parent is (each load, as a reload forgets it). */
  #hello(): void {
    const target = this.#frame.contentWindow;
    if (!target || this.#viewerOrigin === null) return;
    const hello: HelloMessage = { channel: EMBED_CHANNEL, v: EMBED_VERSION, type: 'hello' };
    // With a target origin the browser drops the message if the frame holds anything else (an error page, a blocked frame).
    target.postMessage(hello, this.#viewerOrigin);
  }

  #receive(e: MessageEvent): void {
    // Only our own frame, and only while it holds the viewer's origin: not another frame, not this page, not a look-alike.
    if (e.source !== this.#frame.contentWindow || e.origin !== this.#viewerOrigin || !isViewerMessage(e.data)) return;
    this.#answered = true;
    const message: ViewerMessage = e.data;
    if (message.type === 'status') this.#status = message.detail;
    if (message.type === 'step') {
      const key = `${message.detail.index}:${message.detail.state}`;
      if (this.#stepsTold.has(key)) return;
      this.#stepsTold.add(key);
    }
    this.#emit(message.type, message.detail);
  }

  #emit(type: ViewerMessage['type'], detail: ViewerMessage['detail'] | EmbedErrorDetail): void {
    this.dispatchEvent(new CustomEvent(`domcast-${type}`, { detail, bubbles: true, composed: true }));
  }
}

if (!customElements.get('domcast-viewer')) customElements.define('domcast-viewer', DomcastViewerElement);

declare global {
  interface HTMLElementTagNameMap {
    'domcast-viewer': DomcastViewerElement;
  }
}
