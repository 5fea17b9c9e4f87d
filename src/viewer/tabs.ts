/**
 * The run's tabs (when it opened more than one), in the footer: which tab the view shows, which
 * others exist or have closed. Told by `hello.tabs` and the stream's `domcast.tabs` events.
 */
import { CustomTag, RrwebEventType, type TabState, type TabsCustomPayload, type WireEvent } from '../protocol/index.js';
import { $ } from './ui.js';

/** The tab list a `domcast.tabs` event carries, or null for any other event. */
export function tabsOf(event: WireEvent): TabState[] | null {
  if (event.type !== RrwebEventType.Custom) return null;
  const data = event.data as { tag?: string; payload?: TabsCustomPayload } | undefined;
  return data?.tag === CustomTag.tabs && Array.isArray(data.payload?.tabs) ? data.payload.tabs : null;
}

function label(url: string): string {
  try {
    const u = new URL(url);
    const last = u.pathname.split('/').filter(Boolean).at(-1);
    return last ?? u.host;
  } catch {
    return url || 'blank';
  }
}

export function showTabs(tabs: readonly TabState[] | null | undefined): void {
  const strip = $('tabs');
  if (!tabs || tabs.length < 2) {
    strip.hidden = true;
    strip.replaceChildren();
    return;
  }
  strip.hidden = false;
  const active = tabs.find((t) => t.active);
  strip.setAttribute('aria-label', `The run has ${tabs.length} tabs; this view shows tab ${active?.index ?? '?'}`);
  strip.replaceChildren(
    ...tabs.map((t) => {
      const tab = document.createElement('span');
      tab.className = 'tab';
      tab.dataset.active = String(t.active);
      tab.dataset.closed = String(t.closed);
      tab.title = t.closed ? `tab ${t.index} (closed)` : `tab ${t.index}: ${t.url}`;
      tab.textContent = `${t.index} · ${t.closed ? 'closed' : label(t.url)}`;
      return tab;
    }),
  );
}
