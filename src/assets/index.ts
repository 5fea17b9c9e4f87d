export { AssetIndex, MAX_WAITERS, type AssetStore } from './asset-index.js';
export { chooseEncoding, compressible, CompressedBodies } from './compress.js';
export { servedContentType } from './content-type.js';
export { ASSET_SEGMENT, assetKey, assetPath, assetPrefix, isCapturable, urlOfKey } from './paths.js';
export { inlineAssets, type AssetSource } from './inline.js';
