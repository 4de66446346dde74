// Hot-word vocabularies through the VocabularyService API: list, create, edit, delete, with
// DashScope's limits checked as the person types (the server checks them again).
import * as api from "./api.js";
import { onLang, t } from "./i18n.js";
import { fill } from "./controls.js";

const $ = (id) => document.getElementById(id);
// The same limits as voxscope/storage/vocabularies.py (DashScope's documented rules).
const MAX_WORDS = 500, MAX_CHARS = 15, MAX_ASCII_WORDS = 7;
const PREFIX = /^[a-z0-9]{1,9}$/;
const LANGS = ["", "zh", "en", "ja", "ko", "yue", "de", "fr", "ru", "es", "it", "pt"];

export async function initVocab(ctx) {
  const listEl = $("vocab-list"), form = $("vocab-editor"), rows = $("vocab-words");
  const modelSel = $("vocab-model"), prefix = $("vocab-prefix");
  const models = ctx.models.filter((m) => m.hotwords && ["recognition", "translation", "chat", "file"].includes(m.kind));
  let items = [];
  let editing = null; // vocabulary id, or "" for a new one

  fill(modelSel, models.map((m) => [m.id, m.id]));
  if (models.some((m) => m.id === "paraformer-realtime-v2")) modelSel.value = "paraformer-realtime-v2";

  function row(word = { text: "", weight: 4, lang: "" }) {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td><input class="w-text" autocomplete="off"><small class="error"></small></td>
      <td><select class="w-weight"></select></td><td><select class="w-lang"></select></td>
      <td><button type="button" class="w-remove"></button></td>`;
    const text = tr.querySelector(".w-text");
    text.value = word.text;
    text.setAttribute("aria-label", t("word"));
    text.placeholder = t("word");
    const weight = tr.querySelector(".w-weight");
    fill(weight, [1, 2, 3, 4, 5].map((n) => [String(n), String(n)]));
    weight.value = String(word.weight ?? 4);
    weight.setAttribute("aria-label", t("weight"));
    const lang = tr.querySelector(".w-lang");
    fill(lang, LANGS.map((c) => [c, c || "—"]));
    lang.value = LANGS.includes(word.lang || "") ? word.lang || "" : "";
    lang.setAttribute("aria-label", t("lang"));
    const remove = tr.querySelector(".w-remove");
    remove.textContent = t("remove");
    remove.addEventListener("click", () => { tr.remove(); check(); });
    text.addEventListener("input", () => { text.dataset.touched = "1"; check(); });
    rows.append(tr);
    return text;
  }

  /** Validate every field; marks errors in place; returns the words or null. */
  function check() {
    let ok = true;
    const seen = new Set();
    const words = [...rows.rows].map((tr) => {
      const input = tr.querySelector(".w-text"), err = tr.querySelector(".error");
      const text = input.value.trim().split(/\s+/).join(" ");
      let msg = "";
      if (!text) msg = t("err_text_empty");
      else if (/^[\x00-\x7f]*$/.test(text)) {
        if (text.split(" ").length > MAX_ASCII_WORDS) msg = t("err_text_words", { max: MAX_ASCII_WORDS });
      } else if (text.replace(/ /g, "").length > MAX_CHARS) msg = t("err_text_chars", { max: MAX_CHARS });
      if (!msg && seen.has(text.toLowerCase())) msg = t("err_duplicate");
      seen.add(text.toLowerCase());
      const shown = form.dataset.touched === "all" || input.dataset.touched ? msg : "";
      err.textContent = shown;
      input.setAttribute("aria-invalid", String(Boolean(shown)));
      ok = ok && !msg;
      const word = { text, weight: Number(tr.querySelector(".w-weight").value) };
      const lang = tr.querySelector(".w-lang").value;
      if (lang) word.lang = lang;
      return word;
    });
    const n = words.length;
    $("vocab-count").textContent = t("words_count", { n, max: MAX_WORDS });
    $("vocab-count").classList.toggle("error", n > MAX_WORDS || n === 0);
    ok = ok && n > 0 && n <= MAX_WORDS;
    if (editing === "") {
      const bad = !PREFIX.test(prefix.value);
      const shown = bad && (form.dataset.touched === "all" || prefix.dataset.touched);
      $("vocab-prefix-error").textContent = shown ? t("err_prefix") : "";
      prefix.setAttribute("aria-invalid", String(Boolean(shown)));
      ok = ok && !bad;
    }
    $("vocab-add").disabled = n >= MAX_WORDS;
    return ok ? words : null;
  }

  function open(id, detail) {
    editing = id;
    form.hidden = false;
    form.dataset.touched = "";
    delete prefix.dataset.touched;
    $("vocab-editor-title").textContent = id || t("vocab_new");
    modelSel.disabled = prefix.disabled = Boolean(id);
    prefix.value = detail ? detail.prefix || "" : "";
    if (detail && detail.target_model) fill(modelSel, [...new Set([detail.target_model, ...models.map((m) => m.id)])]
      .map((m) => [m, m]));
    if (detail) modelSel.value = detail.target_model;
    $("vocab-prefix-error").textContent = "";
    $("vocab-form-error").textContent = "";
    rows.replaceChildren();
    (detail ? detail.vocabulary : [{ text: "", weight: 4 }]).forEach((w) => row(w));
    check();
    (id ? rows.querySelector(".w-text") : prefix).focus();
  }

  function render() {
    listEl.replaceChildren(...items.map((v) => {
      const li = document.createElement("li");
      li.dataset.id = v.vocabulary_id;
      li.innerHTML = `<span class="vid"></span><span class="meta"></span>
        <button class="edit"></button><button class="delete danger"></button>`;
      li.querySelector(".vid").textContent = v.vocabulary_id;
      li.querySelector(".meta").textContent =
        `${v.target_model || ""} · ${(v.vocabulary || []).length} · ${t("modified")} ${v.gmt_modified}`;
      const edit = li.querySelector(".edit"), del = li.querySelector(".delete");
      edit.textContent = t("edit");
      del.textContent = t("delete");
      edit.addEventListener("click", () => open(v.vocabulary_id, v));
      del.addEventListener("click", async () => {
        if (!confirm(t("confirm_delete", { id: v.vocabulary_id }))) return;
        try {
          await api.vocab.remove(v.vocabulary_id);
          if (editing === v.vocabulary_id) form.hidden = true;
          ctx.notify(t("deleted"), "info");
          await load();
        } catch (err) { ctx.notify(err); }
      });
      return li;
    }));
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = t("vocab_none");
      listEl.append(li);
    }
  }

  async function load() {
    try {
      const list = await api.vocab.list();
      // The list has ids and times; the details say which model and which words.
      items = await Promise.all(list.map(async (v) => ({ ...v, ...(await api.vocab.get(v.vocabulary_id)) })));
    } catch (err) {
      ctx.notify(err);
      items = [];
    }
    render();
    ctx.vocabulariesChanged(items);
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    form.dataset.touched = "all";
    const words = check();
    if (!words) { $("vocab-form-error").textContent = t("err_fix"); return; }
    $("vocab-form-error").textContent = "";
    try {
      if (editing) await api.vocab.update(editing, words);
      else editing = await api.vocab.create(modelSel.value, prefix.value, words);
      $("vocab-editor-title").textContent = editing;
      modelSel.disabled = prefix.disabled = true;
      ctx.notify(t("saved"), "info");
      await load();
    } catch (err) {
      $("vocab-form-error").textContent = err instanceof api.ApiError ? `${err.code}: ${err.message}` : err.message;
    }
  });
  prefix.addEventListener("input", () => { prefix.dataset.touched = "1"; check(); });
  $("vocab-add").addEventListener("click", () => { row().focus(); check(); });
  $("vocab-new").addEventListener("click", () => open("", null));
  $("vocab-close").addEventListener("click", () => { form.hidden = true; editing = null; });
  onLang(() => { render(); if (!form.hidden) check(); });
  await load();
}
