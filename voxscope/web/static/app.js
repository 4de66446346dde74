// The console's entry: language, tabs, key handling, the model catalogue, and the four views.
import * as api from "./api.js";
import { apply, lang, LANGS, setLang, t } from "./i18n.js";
import { initLive } from "./live.js";
import { initFiles } from "./files.js";
import { initVocab } from "./vocab.js";
import { initUsage } from "./usage.js";

const $ = (id) => document.getElementById(id);

/** Show a message above the panels ("error" or "info"); an ApiError shows its code too. */
export function notify(message, kind = "error") {
  const box = $("notice");
  if (message instanceof api.ApiError) message = `${t("error")}: ${message.code}: ${message.message}`;
  else if (message instanceof Error) message = message.message;
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = !message;
  clearTimeout(notify.timer);
  if (kind === "info") notify.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

function tabs() {
  const list = [...document.querySelectorAll('[role="tab"]')];
  const show = (tab, focus) => {
    for (const other of list) {
      const on = other === tab;
      other.setAttribute("aria-selected", String(on));
      other.tabIndex = on ? 0 : -1;
      const panel = $(other.getAttribute("aria-controls"));
      const shown = on && panel.hidden;
      panel.hidden = !on;
      if (shown) panel.dispatchEvent(new Event("show")); // views that load on demand (usage)
    }
    if (focus) tab.focus();
    history.replaceState(null, "", `#${tab.id.slice(4)}`);
  };
  list.forEach((tab, i) => {
    tab.addEventListener("click", () => show(tab));
    tab.addEventListener("keydown", (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (step) show(list[(i + step + list.length) % list.length], true);
      if (e.key === "Home") show(list[0], true);
      if (e.key === "End") show(list[list.length - 1], true);
    });
  });
  const start = list.find((tab) => tab.id === `tab-${location.hash.slice(1)}`);
  if (start) show(start);
}

function languageMenu() {
  const select = $("ui-lang");
  for (const [code, name] of Object.entries(LANGS)) select.add(new Option(name, code));
  select.value = lang();
  select.addEventListener("change", () => setLang(select.value));
}

/** Ask for the API key until a token is held (keyed servers only). */
function askKey(reason) {
  const dialog = $("key-dialog"), input = $("key-input"), error = $("key-error");
  error.textContent = reason || "";
  return new Promise((resolve) => {
    $("key-form").onsubmit = async (e) => {
      e.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      let outcome;
      try {
        outcome = await api.exchangeKey(key);
      } catch (err) {
        error.textContent = err.message;
        return;
      } finally {
        input.value = ""; // the key is not kept anywhere, not even in the field
      }
      if (outcome === "ok") {
        dialog.close();
        resolve();
      } else {
        error.textContent = t(outcome === "wrong-key" ? "key_wrong" : "key_no_tokens");
      }
    };
    dialog.addEventListener("cancel", (e) => e.preventDefault());
    dialog.showModal();
    input.focus();
  });
}

async function connect() {
  for (;;) {
    const { state, models } = await api.authState();
    if (state === "open") return models;
    await askKey();
  }
}

async function main() {
  languageMenu();
  apply();
  tabs();
  api.onTokenExpired(() => askKey(t("key_expired")));
  let models;
  try {
    models = await connect();
  } catch (err) {
    notify(err);
    return;
  }
  const ctx = { models, notify, vocabListeners: [] };
  ctx.vocabulariesChanged = (list) => ctx.vocabListeners.forEach((f) => f(list));
  initLive(ctx);
  initFiles(ctx);
  initUsage(ctx);
  await initVocab(ctx);
}

main();
