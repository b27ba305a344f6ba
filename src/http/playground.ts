/**
 * The GraphiQL playground, served entirely by the hub (hospital intranets are often offline): the page,
 * GraphiQL and React come from the installed npm packages, never from a CDN.
 *
 * The page has a token bar above GraphiQL: a token pasted (or fetched with a client id and secret) once is
 * sent with every request of every tab, including the introspection that loads the schema for the Docs panel
 * and autocomplete; when a request answers 401 the page says how to get a token. The token is kept in the
 * tab's sessionStorage only (it lives 15 minutes anyway).
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

/**
 * The page's own script (an asset: the page's Content-Security-Policy allows no inline script). It reads the tabs
 * and the endpoint from the page's JSON data block and puts every text it shows on the page as text.
 */
const pageScript = Buffer.from(`(function () {
  const config = JSON.parse(document.getElementById('playground-config').textContent);
  const tabs = config.tabs;
  const endpoint = config.endpoint;
  const notice = document.getElementById('auth-notice');
  for (const origin of notice.querySelectorAll('.origin')) origin.textContent = location.origin;
  const input = document.getElementById('token-input');
  const state = document.getElementById('token-state');
  const storageKey = 'consortium-hub.token';
  let token = sessionStorage.getItem(storageKey) || '';

  function showState() {
    state.textContent = token ? '已设置令牌，所有标签页共用 · token set for every tab' : '未设置令牌 · no token yet';
    state.className = token ? 'ok' : '';
  }
  // Every request of every tab (and the introspection of the schema) carries the token; a 401 explains.
  async function hubFetch(url, init) {
    const headers = new Headers(init && init.headers);
    if (token && !headers.has('authorization')) headers.set('authorization', 'Bearer ' + token);
    const response = await fetch(url, Object.assign({}, init, { headers }));
    notice.hidden = response.status !== 401;
    return response;
  }
  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  function render() {
    // A new fetcher makes GraphiQL load the schema again, now with the token.
    const fetcher = GraphiQL.createFetcher({ url: endpoint, fetch: hubFetch });
    root.render(React.createElement(GraphiQL, { fetcher, defaultTabs: tabs, defaultEditorToolsVisibility: true, shouldPersistHeaders: true }));
  }
  function useToken(value) {
    token = value.trim().replace(/^Bearer\\s+/i, '');
    if (token) sessionStorage.setItem(storageKey, token); else sessionStorage.removeItem(storageKey);
    input.value = '';
    showState();
    render();
  }
  document.getElementById('token-bar').addEventListener('submit', function (event) {
    event.preventDefault();
    useToken(input.value);
  });
  document.getElementById('token-clear').addEventListener('click', function () { useToken(''); });
  document.getElementById('token-request').addEventListener('click', async function () {
    const id = document.getElementById('client-id').value;
    const secret = document.getElementById('client-secret').value;
    state.textContent = '正在获取令牌… · requesting a token…';
    const response = await fetch(location.origin + '/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret }).toString(),
    });
    const answer = await response.json().catch(function () { return {}; });
    if (response.ok && answer.access_token) {
      document.getElementById('client-secret').value = '';
      document.getElementById('token-fetch').open = false;
      useToken(answer.access_token);
    } else {
      state.className = '';
      state.textContent = '获取失败 · refused: ' + (answer.error_description || answer.error || response.status);
    }
  });
  showState();
  render();
})();
`);

export function playgroundAsset(name: string): { body: Buffer; type: string } | undefined {
  if (name === 'playground.js') return { body: pageScript, type: 'text/javascript' };
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

const style = `
html, body { height: 100%; margin: 0; font-family: system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
body { display: flex; flex-direction: column; }
#token-bar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 12px; padding: 6px 12px; background: #f3f5f9; border-bottom: 1px solid #d6dbe3; font-size: 13px; }
#token-bar strong { margin-right: 8px; }
#token-bar input { font: inherit; padding: 2px 6px; }
#token-input { width: 22em; }
#token-bar button { font: inherit; padding: 2px 10px; cursor: pointer; }
#token-bar details { display: inline-block; }
#token-bar details[open] { background: #fff; padding: 4px 8px; border: 1px solid #d6dbe3; border-radius: 4px; }
#token-state { color: #555; }
#token-state.ok { color: #1a7f37; }
#auth-notice { margin: 0; padding: 8px 12px; background: #fff4e5; border-bottom: 1px solid #f0c36d; font-size: 13px; line-height: 1.5; }
#auth-notice code { background: #fbe7c6; padding: 0 3px; }
#graphiql { flex: 1; min-height: 0; }
`;

export function playgroundPage(endpoint: string): string {
  const tabs = exampleQueries.map((example) => ({ query: `# ${example.title}\n${example.query}` }));
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>医联体互联互通平台 · GraphQL 调试台 (Consortium hub playground)</title>
<link rel="stylesheet" href="${PLAYGROUND_ASSET_PREFIX}graphiql.min.css">
<style>${style}</style>
</head>
<body>
<form id="token-bar" autocomplete="off">
  <strong>医联体互联互通平台 GraphQL 调试台</strong>
  <label>访问令牌 Access token <input id="token-input" name="token" type="password" placeholder="粘贴访问令牌 / paste an access token"></label>
  <button id="token-apply" type="submit">使用令牌 Use</button>
  <button id="token-clear" type="button">清除 Clear</button>
  <details id="token-fetch">
    <summary>用客户端凭据获取令牌 Get one with a client id and secret</summary>
    <label>客户端 Client id <input id="client-id" name="client_id" value="consortium-admin"></label>
    <label>密钥 Secret <input id="client-secret" name="client_secret" type="password"></label>
    <button id="token-request" type="button">获取 Get token</button>
  </details>
  <span id="token-state" role="status">未设置令牌 · no token yet</span>
</form>
<p id="auth-notice" hidden>
  需要访问令牌（HTTP 401）。在上方“用客户端凭据获取令牌”中填入客户端 ID 和密钥（演示环境：<code>consortium-admin</code> / <code>demo-secret-consortium-admin</code>，其他演示客户端见 README），
  或用 <code>curl -u &lt;client&gt;:&lt;secret&gt; -d grant_type=client_credentials <span class="origin"></span>/oauth/token</code> 获取令牌后粘贴到“访问令牌”框。令牌对所有标签页生效，包括加载文档面板的结构查询。<br>
  An access token is needed (HTTP 401): get one above with a client id and secret, or with
  <code>curl -u &lt;client&gt;:&lt;secret&gt; -d grant_type=client_credentials <span class="origin"></span>/oauth/token</code>, and paste it into the token field. It applies to every tab and to the schema for the Docs panel.
</p>
<div id="graphiql">Loading the playground…</div>
<script src="${PLAYGROUND_ASSET_PREFIX}react.production.min.js"></script>
<script src="${PLAYGROUND_ASSET_PREFIX}react-dom.production.min.js"></script>
<script src="${PLAYGROUND_ASSET_PREFIX}graphiql.min.js"></script>
<script type="application/json" id="playground-config">${escapeForScript({ tabs, endpoint })}</script>
<script src="${PLAYGROUND_ASSET_PREFIX}playground.js"></script>
</body>
</html>`;
}
