export { loadConfig, SETTING_NAMES, type Config } from './config.js';
export { createServer, type Server } from './app.js';
export { VIEWER_CSP } from './routes/viewer.js';
export { createWorker, type Worker } from './worker.js';
