import type { CDPSession, Page } from 'playwright-core';
import type { ControlInput } from '../protocol/index.js';
import { keyEvent } from './keys.js';

/** Why an input was not applied: the element is gone from the page, or the page is. */
export class InputMissed extends Error {}

const BUTTONS = { left: 1, right: 2, middle: 4 } as const;

/**
 * Applies a person's input to a run's page as real, trusted input (CDP Input domain on the page's
 * own DevTools session): a pointer event lands on the element the viewer pointed at, found by its
 * rrweb node id through the recorder's mirror in the page, at the same offset from its corner.
 */
export class PageInput {
  private cdp: Promise<CDPSession> | null = null;

  constructor(readonly page: Page) {}

  private session(): Promise<CDPSession> {
    this.cdp ??= this.page.context().newCDPSession(this.page);
    return this.cdp;
  }

  /**
   * The page point for element `id` at (x, y) from its corner, clamped inside it. Asked of the
   * recorder in the page's main world on the same DevTools session the input then goes through: one
   * round trip, where Playwright's evaluate costs several (its latency is the person's).
   */
  private async point(cdp: CDPSession, id: number, x: number, y: number, reveal: boolean): Promise<{ x: number; y: number }> {
    const answer = await cdp
      .send('Runtime.evaluate', { expression: `window.__domcast?.locate(${Math.trunc(id)}, ${reveal}) ?? null`, returnByValue: true })
      .catch(() => null);
    const box = answer?.result.value as { x: number; y: number; width: number; height: number } | null | undefined;
    if (!box) throw new InputMissed(`element ${id} is not on the page any more`);
    const within = (v: number, size: number): number => (size <= 0 ? 0 : Math.min(Math.max(v, 0), size - 0.01));
    return { x: box.x + within(x, box.width), y: box.y + within(y, box.height) };
  }

  async apply(input: ControlInput): Promise<void> {
    if (this.page.isClosed()) throw new InputMissed('the page is closed');
    const cdp = await this.session();
    switch (input.kind) {
      case 'move': {
        const p = await this.point(cdp, input.id, input.x, input.y, false);
        await cdp.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: p.x, y: p.y, modifiers: input.mods ?? 0 });
        return;
      }
      case 'click': {
        const p = await this.point(cdp, input.id, input.x, input.y, true);
        const button = input.button ?? 'left';
        const clickCount = Math.min(Math.max(input.clicks ?? 1, 1), 3);
        const common = { x: p.x, y: p.y, button, clickCount, modifiers: input.mods ?? 0 };
        // No move first: Chromium holds a move for the next frame (up to 16 ms); the press lands where it says.
        // Both sent at once: a session's commands are handled in order.
        await Promise.all([
          cdp.send('Input.dispatchMouseEvent', { type: 'mousePressed', buttons: BUTTONS[button], ...common }),
          cdp.send('Input.dispatchMouseEvent', { type: 'mouseReleased', buttons: 0, ...common }),
        ]);
        this.flush(cdp);
        return;
      }
      case 'wheel': {
        const p = await this.point(cdp, input.id, input.x, input.y, false);
        await cdp.send('Input.dispatchMouseEvent', { type: 'mouseWheel', x: p.x, y: p.y, deltaX: input.dx, deltaY: input.dy, modifiers: input.mods ?? 0 });
        return;
      }
      case 'key':
        await cdp.send('Input.dispatchKeyEvent', keyEvent(input.phase, input.key, input.code, input.mods ?? 0, input.repeat ?? false));
        if (input.phase === 'down') this.flush(cdp);
        return;
      case 'text':
        await cdp.send('Input.insertText', { text: input.text });
        this.flush(cdp);
        return;
    }
  }

  /**
   * The input has been handled (CDP answers once the page ran its handlers): what it changed leaves the
   * recorder now. Otherwise a click's change waits out the recorder's 10 ms batch window that the press's
   * own events opened (bench/control.ts: 10 ms of a 28 ms p50). Not awaited: the next input need not wait.
   */
  private flush(cdp: CDPSession): void {
    cdp.send('Runtime.evaluate', { expression: 'void window.__domcast?.flush()' }).catch(() => undefined);
  }

  close(): void {
    void this.cdp?.then((s) => s.detach()).catch(() => undefined);
    this.cdp = null;
  }
}
