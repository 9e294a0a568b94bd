#!/usr/bin/env node
// A development server for the console (node's standard library only): serves a built dist folder and
// forwards /api/, /healthz and /readyz to a running samokoder, so the console and the API share one
// origin, as they do when the kernel serves the console itself. That is what makes the session
// cookies (SameSite=Strict, host-only) and the CSRF double-submit work without CORS.
//
//   node console/build.mjs console/dist
//   node console/dev-server.mjs --dist console/dist --api http://127.0.0.1:8080 [--port 5173]
//        [--host 127.0.0.1] [--frame-src 'http://*.localhost:*']
//
// Pages are sent with the Content-Security-Policy the kernel will send, so a violation shows here
// first. Precompressed .br/.gz copies are served when the browser accepts them, as the kernel does.
// Rebuild after a change (node console/build.mjs console/dist) and reload the page.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const options = {
    dist: path.join(here, 'dist'),
    api: 'http://127.0.0.1:8080',
    port: 5173,
    host: '127.0.0.1',
    frameSrc: 'http://*.localhost:*',
  };
  const usage =
    'usage: node dev-server.mjs [--dist DIR] [--api URL] [--port N] [--host ADDR] [--frame-src SOURCES]';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value\n${usage}`);
      return argv[++i];
    };
    if (arg === '--dist') options.dist = path.resolve(value());
    else if (arg === '--api') options.api = value();
    else if (arg === '--port') options.port = Number(value());
    else if (arg === '--host') options.host = value();
    else if (arg === '--frame-src') options.frameSrc = value();
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}\n${usage}`);
  }
  const api = new URL(options.api);
  if (api.protocol !== 'http:') throw new Error('--api must be an http:// URL (the dev server speaks plain HTTP to it)');
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) throw new Error('--port must be 0..65535');
  if (!fs.existsSync(path.join(options.dist, 'index.html'))) {
    throw new Error(`${options.dist}/index.html does not exist: run \`node console/build.mjs ${options.dist}\` first`);
  }
  return { ...options, api };
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

const PROXIED = ['/api/', '/healthz', '/readyz'];

function contentSecurityPolicy(frameSrc) {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    `frame-src ${frameSrc}`,
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function serveStatic(options, request, response) {
  const url = new URL(request.url, 'http://dev');
  let pathname;
  try {
    pathname = decodeURIComponent(url.pathname);
  } catch {
    response.writeHead(400).end('bad path');
    return;
  }
  // Only / and /assets/*, as the kernel serves: anything else is the SPA's business (hash routes).
  const relative = pathname === '/' || pathname === '/index.html' ? 'index.html' : pathname.slice(1);
  if (relative !== 'index.html' && !relative.startsWith('assets/')) {
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  const file = path.join(options.dist, relative);
  if (!file.startsWith(options.dist + path.sep) || relative.includes('\0')) {
    response.writeHead(404).end();
    return;
  }
  let stat;
  try {
    stat = fs.statSync(file);
  } catch {
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  if (!stat.isFile()) {
    response.writeHead(404).end();
    return;
  }
  const accepted = String(request.headers['accept-encoding'] || '');
  let body = file;
  let encoding = null;
  for (const [name, suffix] of [['br', '.br'], ['gzip', '.gz']]) {
    if (new RegExp(`\\b${name}\\b`).test(accepted) && fs.existsSync(file + suffix)) {
      body = file + suffix;
      encoding = name;
      break;
    }
  }
  const headers = {
    'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
    'Content-Length': fs.statSync(body).size,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    Vary: 'Accept-Encoding',
    // Hashed names never change content; index.html names the current ones, so it is revalidated.
    'Cache-Control': relative === 'index.html' ? 'no-cache' : 'public, max-age=31536000, immutable',
  };
  if (encoding) headers['Content-Encoding'] = encoding;
  if (relative === 'index.html') {
    headers['Content-Security-Policy'] = contentSecurityPolicy(options.frameSrc);
    headers['X-Frame-Options'] = 'DENY';
    headers['Cross-Origin-Opener-Policy'] = 'same-origin';
  }
  response.writeHead(200, headers);
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  fs.createReadStream(body).pipe(response);
}

// Streams both ways without buffering, so server-sent events and large exports pass through as they
// come. Host is rewritten to the API's; the browser's cookies and headers go through unchanged.
function proxy(options, request, response) {
  const headers = { ...request.headers, host: options.api.host };
  headers['x-forwarded-host'] = request.headers.host || '';
  headers['x-forwarded-proto'] = 'http';
  const upstream = http.request(
    {
      hostname: options.api.hostname,
      port: options.api.port || 80,
      method: request.method,
      path: request.url,
      headers,
    },
    (answer) => {
      response.writeHead(answer.statusCode || 502, answer.rawHeaders);
      // Node holds the head until the first body byte; an event stream with nothing new to say yet
      // would look like a hanging connection to EventSource (no `open`) until the next keep-alive.
      response.flushHeaders();
      answer.pipe(response);
      answer.on('error', () => response.destroy());
    },
  );
  upstream.on('error', (error) => {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    response.writeHead(502, { 'Content-Type': 'application/problem+json' });
    response.end(
      JSON.stringify({
        type: 'https://samokoder.dev/problems/dev_proxy',
        title: 'Bad Gateway',
        status: 502,
        detail: `the dev server cannot reach samokoder at ${options.api.origin}: ${error.message}`,
        errors: [],
      }),
    );
  });
  // A browser that goes away (a closed EventSource) ends the upstream request too.
  response.on('close', () => upstream.destroy());
  request.pipe(upstream);
}

function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`dev-server: ${error.message}\n`);
    process.exit(2);
  }
  const server = http.createServer((request, response) => {
    const pathname = (request.url || '/').split('?')[0];
    if (PROXIED.some((prefix) => pathname === prefix.replace(/\/$/, '') || pathname.startsWith(prefix))) {
      proxy(options, request, response);
    } else if (request.method === 'GET' || request.method === 'HEAD') {
      serveStatic(options, request, response);
    } else {
      response.writeHead(405, { Allow: 'GET, HEAD' }).end();
    }
  });
  server.on('error', (error) => {
    process.stderr.write(`dev-server: ${error.message}\n`);
    process.exit(1);
  });
  server.listen(options.port, options.host, () => {
    const { port } = server.address();
    process.stdout.write(
      `console dev server on http://${options.host}:${port} (dist ${options.dist}, API ${options.api.origin})\n`,
    );
  });
  // Open event streams would keep close() waiting for ever; end them.
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main();
