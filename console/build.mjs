#!/usr/bin/env node
// Builds the console into a folder the kernel serves as it is:
//
//   node console/build.mjs <out-dir> [--node-modules <dir>]
//
// <out-dir>/index.html and <out-dir>/assets/<name>-<contenthash>.{js,css,svg}, each with a .gz (gzip
// level 9) and a .br (brotli quality 11) copy next to it, so the server can send a precompressed body
// without compressing per request. The names carry a content hash, so the assets may be cached forever
// and only index.html must be revalidated.
//
// --node-modules: where `npm ci` put the dependencies. The CMake build installs them in the build tree,
// not next to these sources, so esbuild (and the packages it bundles) are looked up there.
//
// The output depends only on the sources and the locked dependencies: esbuild is deterministic, the
// HTML is assembled from a template with sorted names, gzip writes no time stamp, and nothing else is
// read from the environment.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));

function fail(message) {
  process.stderr.write(`console build failed: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const usage = 'usage: node build.mjs <out-dir> [--node-modules <dir>]';
  let outDir = null;
  let nodeModules = path.join(here, 'node_modules');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--node-modules') {
      if (i + 1 >= argv.length) fail(`--node-modules needs a directory\n${usage}`);
      nodeModules = path.resolve(argv[++i]);
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    } else if (arg.startsWith('-')) {
      fail(`unknown option ${arg}\n${usage}`);
    } else if (outDir === null) {
      outDir = path.resolve(arg);
    } else {
      fail(`only one output directory, got ${outDir} and ${arg}\n${usage}`);
    }
  }
  if (outDir === null) fail(`no output directory given\n${usage}`);
  return { outDir, nodeModules };
}

// esbuild is loaded from --node-modules rather than imported statically: a static import would look for
// it next to this file, where there is no node_modules in a CMake build.
function loadEsbuild(nodeModules) {
  if (!fs.existsSync(nodeModules)) {
    fail(`${nodeModules} does not exist: run \`npm ci\` there first (or pass --node-modules <dir>)`);
  }
  try {
    return createRequire(path.join(nodeModules, 'noop.js'))('esbuild');
  } catch (error) {
    fail(`esbuild cannot be loaded from ${nodeModules}: ${error.message}`);
  }
}

function compress(file) {
  const bytes = fs.readFileSync(file);
  // Node's gzip header has a zero mtime and a fixed OS byte, so the same input gives the same bytes.
  fs.writeFileSync(`${file}.gz`, zlib.gzipSync(bytes, { level: 9 }));
  fs.writeFileSync(
    `${file}.br`,
    zlib.brotliCompressSync(bytes, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
        [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    }),
  );
}

// Removes only what an earlier build of this script wrote, so a mistyped <out-dir> never loses
// anything else.
function cleanOutput(outDir) {
  fs.rmSync(path.join(outDir, 'assets'), { recursive: true, force: true });
  for (const name of ['index.html', 'index.html.gz', 'index.html.br']) {
    fs.rmSync(path.join(outDir, name), { force: true });
  }
}

async function main() {
  const { outDir, nodeModules } = parseArgs(process.argv.slice(2));
  const esbuild = loadEsbuild(nodeModules);
  const assetsDir = path.join(outDir, 'assets');

  let result;
  try {
    result = await esbuild.build({
      absWorkingDir: here,
      entryPoints: { console: 'src/main.jsx' },
      bundle: true,
      minify: true,
      format: 'esm',
      target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
      platform: 'browser',
      jsx: 'automatic',
      jsxImportSource: 'preact',
      nodePaths: [nodeModules],
      outdir: assetsDir,
      // Named here after their own bytes instead of esbuild's [hash], which also covers the input
      // paths: a node_modules elsewhere (the CMake build tree) would rename identical bytes.
      entryNames: '[name]',
      legalComments: 'eof',
      charset: 'utf8',
      sourcemap: false,
      metafile: true,
      write: false,
      logLevel: 'silent',
      define: { 'process.env.NODE_ENV': '"production"' },
    });
  } catch (error) {
    const messages = (error.errors || []).map((e) =>
      e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text,
    );
    fail(messages.length > 0 ? messages.join('\n') : error.message);
  }
  for (const warning of result.warnings) {
    process.stderr.write(`console build warning: ${warning.text}\n`);
  }

  const hashOf = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 10);
  const outputs = result.outputFiles.map((file) => {
    const ext = path.extname(file.path);
    const name = `assets/${path.basename(file.path, ext)}-${hashOf(file.contents)}${ext}`;
    return { name, path: path.join(outDir, name), contents: file.contents };
  });
  const script = outputs.find((o) => o.name.endsWith('.js'));
  const styles = outputs.filter((o) => o.name.endsWith('.css')).map((o) => o.name).sort();
  if (!script) fail('esbuild produced no JavaScript');
  if (styles.length === 0) fail('esbuild produced no stylesheet (is styles.css imported by main.jsx?)');

  // The icon is not imported by any script; it is named the same way.
  const icon = fs.readFileSync(path.join(here, 'src', 'favicon.svg'));
  const iconName = `assets/favicon-${hashOf(icon)}.svg`;

  const template = fs.readFileSync(path.join(here, 'src', 'index.html'), 'utf8');
  for (const marker of ['<!--icon-->', '<!--styles-->', '<!--script-->']) {
    if (!template.includes(marker)) fail(`src/index.html lacks the ${marker} marker`);
  }
  const html = template
    .replace('<!--icon-->', `<link rel="icon" type="image/svg+xml" href="${iconName}">`)
    .replace('<!--styles-->', styles.map((name) => `<link rel="stylesheet" href="${name}">`).join('\n    '))
    .replace('<!--script-->', `<script type="module" src="${script.name}"></script>`);

  cleanOutput(outDir);
  fs.mkdirSync(assetsDir, { recursive: true });
  const written = [];
  for (const output of outputs.sort((a, b) => a.name.localeCompare(b.name))) {
    fs.writeFileSync(output.path, output.contents);
    written.push(output.path);
  }
  fs.writeFileSync(path.join(outDir, iconName), icon);
  written.push(path.join(outDir, iconName));
  const index = path.join(outDir, 'index.html');
  fs.writeFileSync(index, html);
  written.push(index);
  for (const file of written) compress(file);

  for (const file of written) {
    const size = fs.statSync(file).size;
    const gz = fs.statSync(`${file}.gz`).size;
    process.stdout.write(`${path.relative(outDir, file).padEnd(36)} ${String(size).padStart(7)} B  gzip ${gz} B\n`);
  }
}

main().catch((error) => fail(error.stack || String(error)));
