export * from './errors.js';
export * from './logger.js';
export * from './paths.js';
export * from './machine-load.js';
export * from './url.js';
