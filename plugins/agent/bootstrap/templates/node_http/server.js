// {{project_name}}: one Node.js process serves the page (public/) and the JSON API (/api) on one port,
// with nothing but Node's own modules.
'use strict';

const http = require('node:http');
const fs = require('node:fs/promises');
const path = require('node:path');

const PORT = Number(process.env.PORT) || 3000;
const HOST = process.env.HOST || '127.0.0.1';
const PUBLIC_DIR = path.join(__dirname, 'public');
const MAX_BODY_BYTES = 1024 * 1024;

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

// The JSON API. A key is "METHOD /api/path", where a segment ":name" matches anything and reaches the
// handler as params.name. A handler gets (req, body, params) and returns {status, body}.
const routes = {
  'GET /api/health': async () => ({ status: 200, body: { ok: true } }),
};

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function sendJson(res, status, data) {
  const text = JSON.stringify(data);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'Request body too large');
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'Request body is not valid JSON');
  }
}

function findRoute(method, pathname) {
  const parts = pathname.split('/');
  for (const [key, handler] of Object.entries(routes)) {
    const [routeMethod, routePath] = key.split(' ');
    if (routeMethod !== method) continue;
    const routeParts = routePath.split('/');
    if (routeParts.length !== parts.length) continue;
    const params = {};
    const matches = routeParts.every((part, i) => {
      if (part.startsWith(':')) {
        params[part.slice(1)] = decodeURIComponent(parts[i]);
        return true;
      }
      return part === parts[i];
    });
    if (matches) return { handler, params };
  }
  return null;
}

async function handleApi(req, res, pathname) {
  const route = findRoute(req.method, pathname);
  if (!route) throw new HttpError(404, 'Not found');
  const body = ['POST', 'PUT', 'PATCH'].includes(req.method) ? await readJson(req) : undefined;
  const result = await route.handler(req, body, route.params);
  if (result.status === 204) {
    res.writeHead(204);
    res.end();
    return;
  }
  sendJson(res, result.status || 200, result.body === undefined ? {} : result.body);
}

async function serveFile(req, res, pathname) {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'Method not allowed');
  let relative = decodeURIComponent(pathname);
  if (relative.endsWith('/')) relative += 'index.html';
  const file = path.join(PUBLIC_DIR, relative);
  if (!file.startsWith(PUBLIC_DIR + path.sep)) throw new HttpError(404, 'Not found');
  let data;
  try {
    data = await fs.readFile(file);
  } catch (error) {
    if (error.code === 'ENOENT' || error.code === 'EISDIR' || error.code === 'ENOTDIR') {
      throw new HttpError(404, 'Not found');
    }
    throw error;
  }
  res.writeHead(200, {
    'Content-Type': CONTENT_TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream',
    'Content-Length': data.length,
  });
  res.end(req.method === 'HEAD' ? undefined : data);
}

const server = http.createServer(async (req, res) => {
  try {
    const { pathname } = new URL(req.url, 'http://localhost');
    if (pathname === '/api' || pathname.startsWith('/api/')) {
      await handleApi(req, res, pathname);
    } else {
      await serveFile(req, res, pathname);
    }
  } catch (error) {
    const status = error instanceof HttpError ? error.status : error instanceof URIError ? 400 : 500;
    if (status === 500) console.error(error);
    if (res.headersSent) {
      res.end();
    } else {
      sendJson(res, status, { error: status === 500 ? 'Internal server error' : error.message });
    }
  }
});

server.listen(PORT, HOST, () => {
  console.log(`{{project_name}} listening on http://${HOST}:${PORT}`);
});
