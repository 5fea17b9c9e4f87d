import type { BrowserContext } from 'playwright-core';

/**
 * Shadow roots a page attaches `closed` are attached `open` instead, in every frame, before the
 * page's scripts run. Playwright's selectors (and workflow-use's `outer >> inner >> #field`
 * chains) pierce open shadow roots only, and rrweb records open ones only: without this a step
 * inside a closed root fails with "no element matches" and the viewer shows its host empty.
 * The price: the page's own code sees `host.shadowRoot` where it would see null. Declarative
 * shadow roots (`<template shadowrootmode="closed">`) are made by the parser and stay closed.
 */
export const OPEN_SHADOW_ROOTS = `(() => {
  const proto = Element.prototype;
  const attach = proto.attachShadow;
  if (typeof attach !== 'function') return;
  const call = Function.prototype.call.bind(attach);
  const assign = Object.assign;
  Object.defineProperty(proto, 'attachShadow', {
    configurable: true,
    writable: true,
    value: { attachShadow(init) { return call(this, assign({}, init, { mode: 'open' })); } }.attachShadow,
  });
})();`;

export async function openShadowRoots(context: BrowserContext): Promise<void> {
  await context.addInitScript({ content: OPEN_SHADOW_ROOTS });
}
