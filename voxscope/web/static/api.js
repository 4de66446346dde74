// The console's client of voxscope's public APIs: /v1/models, uploads, tasks, vocabularies,
// and the inference WebSocket URL. Every request is a plain same-origin request.
//
// Keys: with no keys configured (local mode) nothing is sent. With keys, the person's API key is
// exchanged once for a short-lived token (DashScope's POST /api/v1/tokens, key in the
// Authorization header) and forgotten; only the token is kept (sessionStorage) and sent: as
// `Authorization: Bearer` on HTTP, and in the WebSocket URL's query (browsers cannot set
// WebSocket headers), under WS_TOKEN_PARAM. The permanent key never goes into a URL, storage or
// a WebSocket request.

export const WS_TOKEN_PARAM = "token";
const TOKEN_STORE = "voxscope.token";
const TOKEN_TTL_S = 1800;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || `HTTP${status}`;
  }
}

let token = null;
try { token = JSON.parse(sessionStorage.getItem(TOKEN_STORE) || "null"); } catch { token = null; }

function liveToken() {
  if (token && token.expires_at * 1000 > Date.now() + 5000) return token.token;
  return null;
}

let renew = null;

/** How to get a new token once the held one has expired (the page asks for the key again). */
export function onTokenExpired(fn) { renew = fn; }

/** Before a request: an expired token is renewed first, so a long session keeps working. */
export async function freshToken() {
  if (token && !liveToken() && renew) {
    token = null;
    sessionStorage.removeItem(TOKEN_STORE);
    await renew();
  }
}

function authHeaders() {
  const tok = liveToken();
  return tok ? { Authorization: `Bearer ${tok}` } : {};
}

async function parse(res) {
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : {}; } catch { body = null; }
  if (!res.ok) {
    const err = body && (body.error || body);
    throw new ApiError(res.status, err && err.code, (err && (err.message || err.msg)) || text);
  }
  return body;
}

/** A JSON request to this server; throws ApiError with DashScope's code and message. */
export async function call(path, { method = "GET", body, headers = {} } = {}) {
  await freshToken();
  const init = { method, headers: { Accept: "application/json", ...authHeaders(), ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return parse(await fetch(path, init));
}

// -- keys and tokens ----------------------------------------------------------------------------
/** "open" (no key needed or a valid token held) or "key" (the page must ask for a key). */
export async function authState() {
  const res = await fetch("/v1/models", { headers: authHeaders() });
  if (res.ok) return { state: "open", models: (await res.json()).data };
  if (res.status === 401) {
    token = null;
    sessionStorage.removeItem(TOKEN_STORE);
    return { state: "key" };
  }
  await parse(res);
  return { state: "key" };
}

/** Exchange an API key for a token. Resolves "ok", "wrong-key" or "no-tokens". */
export async function exchangeKey(key) {
  const res = await fetch(`/api/v1/tokens?expire_in_seconds=${TOKEN_TTL_S}`, {
    method: "POST", headers: { Accept: "application/json", Authorization: `Bearer ${key}` },
  });
  if (res.status === 401 || res.status === 403) return "wrong-key";
  if (res.status === 404 || res.status === 405) return "no-tokens";
  const body = await parse(res);
  const out = body.output || body;
  if (!out.token) return "no-tokens";
  token = { token: out.token, expires_at: out.expires_at || Date.now() / 1000 + 60 };
  sessionStorage.setItem(TOKEN_STORE, JSON.stringify(token));
  return "ok";
}

// -- models -------------------------------------------------------------------------------------
export async function models() {
  return (await call("/v1/models")).data;
}

// -- usage --------------------------------------------------------------------------------------
/** The caller's own usage rows (one per model and UTC day) from `since` (YYYY-MM-DD) on. */
export const usage = (since) => call(`/api/v1/usage?since=${encodeURIComponent(since)}`)
  .then((r) => r.output.usage);

// -- live recognition ---------------------------------------------------------------------------
export function inferenceUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const tok = liveToken();
  const query = tok ? `?${WS_TOKEN_PARAM}=${encodeURIComponent(tok)}` : "";
  return `${scheme}//${location.host}/api-ws/v1/inference${query}`;
}

// -- vocabularies (VocabularyService: one POST per action) ----------------------------------------
const customization = (input) => call("/api/v1/services/audio/asr/customization", {
  method: "POST", body: { model: "speech-biasing", parameters: {}, input },
}).then((r) => r.output);

export const vocab = {
  list: () => customization({ action: "list_vocabulary", page_index: 0, page_size: 100 })
    .then((o) => o.vocabulary_list),
  get: (id) => customization({ action: "query_vocabulary", vocabulary_id: id }),
  create: (targetModel, prefix, words) => customization({
    action: "create_vocabulary", target_model: targetModel, prefix, vocabulary: words,
  }).then((o) => o.vocabulary_id),
  update: (id, words) => customization({ action: "update_vocabulary", vocabulary_id: id, vocabulary: words }),
  remove: (id) => customization({ action: "delete_vocabulary", vocabulary_id: id }),
};

// -- files: the SDK's upload flow, then an async transcription task ---------------------------------
/** Upload a File as the SDK does (policy, then a policy-signed POST); resolves its oss:// URL. */
export async function upload(file, model) {
  const policy = (await call(`/api/v1/uploads?action=getPolicy&model=${encodeURIComponent(model)}`)).data;
  const key = `${policy.upload_dir}/${file.name.replace(/[\\/\x00-\x1f]/g, "_") || "audio"}`;
  const form = new FormData();
  form.append("OSSAccessKeyId", policy.oss_access_key_id);
  form.append("Signature", policy.signature);
  form.append("policy", policy.policy);
  form.append("key", key);
  form.append("x-oss-object-acl", policy.x_oss_object_acl);
  form.append("x-oss-forbid-overwrite", policy.x_oss_forbid_overwrite);
  form.append("success_action_status", "200");
  form.append("x-oss-content-type", file.type || "application/octet-stream");
  form.append("file", file, file.name);
  // The upload is authorised by the signed policy, not by a key (as with DashScope's OSS).
  const res = await fetch(policy.upload_host, { method: "POST", body: form });
  if (!res.ok) await parse(res);
  return `oss://${key}`;
}

export async function submitFile(profile, url, parameters) {
  const input = profile.file_form === "qwen" ? { file_url: url } : { file_urls: [url] };
  const out = await call("/api/v1/services/audio/asr/transcription", {
    method: "POST", headers: { "X-DashScope-Async": "enable" },
    body: { model: profile.id, parameters, input },
  });
  return out.output.task_id;
}

export const task = (id) => call(`/api/v1/tasks/${encodeURIComponent(id)}`);
export const tasks = (pageSize = 20) => call(`/api/v1/tasks?page_no=1&page_size=${pageSize}`);
export const cancelTask = (id) => call(`/api/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: "POST" });

/** The result documents' URLs of a finished task output (both result shapes). */
export function resultUrls(output) {
  if (output.result && output.result.transcription_url) return [output.result.transcription_url];
  return (output.results || []).filter((r) => r.transcription_url).map((r) => r.transcription_url);
}

/** A result document (signed link: no credentials, like DashScope's). */
export async function resultDocument(url) {
  return parse(await fetch(url, { headers: { Accept: "application/json" } }));
}
