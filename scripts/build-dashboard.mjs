// Bundles the dashboard's page (src/dashboard/ui) into dist/dashboard/app.js and app.css with esbuild: one
// minified file each, Preact included, so the package serves every asset itself (no CDN, works offline).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

const out = new URL('../dist/dashboard/', import.meta.url);
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [new URL('../src/dashboard/ui/main.tsx', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: new URL('app.js', out).pathname,
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(new URL('../src/dashboard/ui/app.css', import.meta.url), new URL('app.css', out));
