/** The frame's URL: the viewer link in embed mode; null for anything but an http(s) link (a javascript: src would run here). */
export function embedUrl(src: string, base: string, options: { controls: boolean; hideStatus: boolean }): URL | null {
  let url: URL;
  try {
    url = new URL(src, base);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  url.searchParams.set('embed', '1');
  if (options.controls) url.searchParams.set('controls', '1');
  else url.searchParams.delete('controls');
  if (options.hideStatus) url.searchParams.set('status', '0');
  else url.searchParams.delete('status');
  return url;
}
