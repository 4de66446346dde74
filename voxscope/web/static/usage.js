// Usage: the caller's own usage (GET /api/v1/usage, with the held token) per model, for today
// and the last 30 days (UTC days, as the server keeps them): audio as h:mm:ss, requests, tasks,
// failures. Loaded when the tab is shown and on Refresh.
import * as api from "./api.js";
import { onLang, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const DAYS = 30;
const FIELDS = ["audio_seconds", "requests", "tasks", "failures"];

/** h:mm:ss of seconds; rounded up, as the results' own `usage` seconds are whole seconds. */
export function hms(seconds) {
  const s = Math.ceil(Math.max(0, Number(seconds) || 0));
  const p = (n) => String(n).padStart(2, "0");
  return `${Math.floor(s / 3600)}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}`;
}

/** The UTC day (YYYY-MM-DD) `back` days before today: the server's usage days are UTC. */
const utcDay = (back = 0) => new Date(Date.now() - back * 86400000).toISOString().slice(0, 10);

/** {model: totals} over the rows (one row per model and day). */
function byModel(rows) {
  const out = new Map();
  for (const r of rows) {
    const sum = out.get(r.model) || { audio_seconds: 0, requests: 0, tasks: 0, failures: 0 };
    for (const f of FIELDS) sum[f] += Number(r[f]) || 0;
    out.set(r.model, sum);
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}

export function initUsage(ctx) {
  const panel = $("panel-usage");
  let rows = null; // the last answer, re-rendered on a language switch

  function table(id, models) {
    const el = $(id);
    const head = `<thead><tr><th>${t("model")}</th><th>${t("usage_audio")}</th>
      <th>${t("usage_requests")}</th><th>${t("usage_tasks")}</th><th>${t("usage_failures")}</th></tr></thead>`;
    el.innerHTML = head + "<tbody></tbody>";
    const body = el.querySelector("tbody");
    if (!models.size) {
      const tr = body.insertRow();
      tr.className = "empty";
      const td = tr.insertCell();
      td.colSpan = 5;
      td.textContent = t("usage_none");
      return;
    }
    for (const [model, sum] of models) {
      const tr = body.insertRow();
      tr.dataset.model = model;
      const name = tr.insertCell();
      name.className = "model";
      name.textContent = model || t("usage_other");
      for (const f of FIELDS) {
        const td = tr.insertCell();
        td.dataset.field = f;
        td.dataset.label = t(`usage_${f === "audio_seconds" ? "audio" : f}`);
        td.textContent = f === "audio_seconds" ? hms(sum[f]) : String(sum[f]);
        if (f === "audio_seconds") td.title = `${sum[f]} s`;
        if (f === "failures" && sum[f] > 0) td.classList.add("error");
      }
    }
  }

  function render() {
    if (!rows) return;
    const today = utcDay();
    table("usage-today", byModel(rows.filter((r) => r.date === today)));
    table("usage-month", byModel(rows));
    const nb = (day) => day.replaceAll("-", "\u2011"); // a date is not split across lines
    $("usage-status").textContent = t("usage_range", { since: nb(utcDay(DAYS - 1)), until: nb(today) });
  }

  async function load() {
    $("usage-refresh").disabled = true;
    try {
      rows = await api.usage(utcDay(DAYS - 1));
      render();
      panel.dataset.loaded = String(Date.now());
    } catch (err) {
      ctx.notify(err);
    } finally {
      $("usage-refresh").disabled = false;
    }
  }

  $("usage-refresh").addEventListener("click", load);
  panel.addEventListener("show", load);
  onLang(render);
  if (!panel.hidden) load();
}
