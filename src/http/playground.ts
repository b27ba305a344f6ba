/**
 * The GraphiQL playground, served entirely by the hub (hospital intranets are often offline): the page,
 * GraphiQL and React come from the installed npm packages, never from a CDN.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { exampleQueries } from './example-queries.ts';

const require = createRequire(import.meta.url);

/** A file inside an installed package (package exports hide the UMD builds from require.resolve). */
const packageFile = (name: string, file: string): string => join(dirname(require.resolve(`${name}/package.json`)), file);

/** Static assets by URL name -> file in node_modules. */
const assetFiles: Record<string, { file: string; type: string }> = {
  'react.production.min.js': { file: packageFile('react', 'umd/react.production.min.js'), type: 'text/javascript' },
  'react-dom.production.min.js': { file: packageFile('react-dom', 'umd/react-dom.production.min.js'), type: 'text/javascript' },
  'graphiql.min.js': { file: packageFile('graphiql', 'graphiql.min.js'), type: 'text/javascript' },
  'graphiql.min.css': { file: packageFile('graphiql', 'graphiql.min.css'), type: 'text/css' },
};

const assetCache = new Map<string, Buffer>();

export const PLAYGROUND_ASSET_PREFIX = '/playground/assets/';

export function playgroundAsset(name: string): { body: Buffer; type: string } | undefined {
  const asset = assetFiles[name];
  if (!asset) return undefined;
  let body = assetCache.get(name);
  if (!body) {
    body = readFileSync(asset.file);
    assetCache.set(name, body);
  }
  return { body, type: asset.type };
}

function escapeForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

export function playgroundPage(endpoint: string): string {
  const tabs = exampleQueries.map((example) => ({ query: `# ${example.title}\n${example.query}` }));
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Consortium hub · GraphQL playground</title>
<link rel="stylesheet" href="${PLAYGROUND_ASSET_PREFIX}graphiql.min.css">
<style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="graphiql">Loading the playground…</div>
<script src="${PLAYGROUND_ASSET_PREFIX}react.production.min.js"></script>
<script src="${PLAYGROUND_ASSET_PREFIX}react-dom.production.min.js"></script>
<script src="${PLAYGROUND_ASSET_PREFIX}graphiql.min.js"></script>
<script>
  const tabs = ${escapeForScript(tabs)};
  const fetcher = GraphiQL.createFetcher({ url: ${escapeForScript(endpoint)} });
  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, { fetcher, defaultTabs: tabs, defaultEditorToolsVisibility: true, shouldPersistHeaders: true }));
</script>
</body>
</html>`;
}
