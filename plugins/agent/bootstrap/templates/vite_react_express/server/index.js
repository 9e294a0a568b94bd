// {{project_name}}: one Express process serves the built client (dist/) and the JSON API (/api) on one
// port.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';

const PORT = Number(process.env.PORT) || 3000;
const HOST = process.env.HOST || '127.0.0.1';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');

const app = express();
app.use(express.json());

// The JSON API.
const api = express.Router();
api.get('/health', (req, res) => {
  res.json({ ok: true });
});
api.use((req, res) => {
  res.status(404).json({ error: 'Not found' });
});
app.use('/api', api);

// The client: built files, and its page for every other GET so routes in the browser work.
app.use(express.static(DIST));
app.get('*', (req, res) => {
  res.sendFile(path.join(DIST, 'index.html'));
});

// eslint-disable-next-line no-unused-vars
app.use((error, req, res, next) => {
  const status = error.status || error.statusCode || 500;
  if (status >= 500) console.error(error);
  res.status(status).json({ error: status >= 500 ? 'Internal server error' : error.message });
});

app.listen(PORT, HOST, () => {
  console.log(`{{project_name}} listening on http://${HOST}:${PORT}`);
});
