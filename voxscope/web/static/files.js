// Files: upload through the SDK's flow, async transcription tasks with state and progress, the
// sentences of finished tasks (select one to play it), downloads, and the task history (from
// the task list API, so it survives a reload).
import * as api from "./api.js";
import { clock, download } from "./formats.js";
import { onLang, t } from "./i18n.js";
import { pickers } from "./controls.js";

const $ = (id) => document.getElementById(id);
const FINAL = ["SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"];
const MEDIA = /\.(aac|amr|avi|flac|flv|m4a|mkv|mov|mp3|mp4|mpeg|mpg|ogg|oga|opus|spx|wav|webm|wma|wmv|3gp)$/i;
const NAMES = "voxscope.task-names"; // task id -> file name, only to label the history nicely

const names = () => { try { return JSON.parse(localStorage.getItem(NAMES) || "{}"); } catch { return {}; } };
function remember(id, name) {
  const all = names();
  all[id] = name;
  localStorage.setItem(NAMES, JSON.stringify(Object.fromEntries(Object.entries(all).slice(-200))));
}
const basename = (url) => decodeURIComponent(String(url || "").split("?")[0].split("/").pop() || "");

export function initFiles(ctx) {
  const pick = pickers(ctx, ["file"], ["file-model", "file-lang", "file-vocab"], "paraformer-v2");
  const listEl = $("file-tasks"), player = $("player");
  const cards = new Map(); // task id (or a temporary upload id) -> card state
  const audio = new Map(); // task id -> object URL of the file picked in this page

  function card(id, name) {
    let c = cards.get(id);
    if (c) return c;
    const li = document.createElement("li");
    li.className = "task";
    li.innerHTML = `<div class="task-head"><strong class="name"></strong>
      <span class="state"></span><progress max="1" value="0"></progress>
      <button class="cancel" hidden></button></div>
      <p class="error" hidden></p><ol class="sentences"></ol>
      <div class="actions exports" hidden><span class="dl"></span>
      <button data-export="txt">TXT</button><button data-export="srt">SRT</button>
      <button data-export="vtt">VTT</button><button data-export="json">JSON</button></div>`;
    c = { id, li, name: name || id, status: "PENDING", sentences: [] };
    li.querySelector(".name").textContent = c.name;
    li.querySelectorAll("[data-export]").forEach((b) => b.addEventListener("click",
      () => download(c.sentences, b.dataset.export, c.name.replace(/\.[^.]+$/, "") || c.id)));
    li.querySelector(".cancel").addEventListener("click", async () => {
      try { await api.cancelTask(c.id); poll(c); } catch (err) { ctx.notify(err); }
    });
    cards.set(id, c);
    listEl.prepend(li);
    $("file-tasks").dataset.empty = "false";
    return c;
  }

  function paint(c) {
    const li = c.li;
    li.dataset.status = c.status;
    li.querySelector(".state").textContent = c.label || t(c.status);
    const bar = li.querySelector("progress");
    bar.hidden = FINAL.includes(c.status);
    bar.value = c.progress || 0;
    const cancel = li.querySelector(".cancel");
    cancel.hidden = c.status !== "PENDING";
    cancel.textContent = t("cancel");
    li.querySelector(".dl").textContent = t("download");
    const err = li.querySelector(".error");
    err.hidden = !c.error;
    err.textContent = c.error || "";
    li.querySelector(".exports").hidden = !c.sentences.length;
    const ol = li.querySelector(".sentences");
    if (ol.childElementCount !== c.sentences.length) {
      ol.replaceChildren(...c.sentences.map((s) => {
        const item = document.createElement("li");
        const b = document.createElement("button");
        b.className = "sentence";
        b.innerHTML = '<span class="time"></span> <span class="text"></span>';
        b.querySelector(".time").textContent = `${clock(s.begin_time)}–${clock(s.end_time)}`;
        b.querySelector(".text").textContent = s.text;
        b.addEventListener("click", () => play(c, s));
        item.append(b);
        return item;
      }));
    }
  }

  function play(c, s) {
    const url = audio.get(c.id);
    if (!url) { ctx.notify(t("no_audio"), "info"); return; }
    if (player.src !== url) player.src = url;
    player.hidden = false;
    player.currentTime = s.begin_time / 1000;
    player.play().catch(() => {});
    player.ontimeupdate = () => { if (player.currentTime * 1000 >= s.end_time) player.pause(); };
  }

  async function loadResults(c, output) {
    const docs = await Promise.all(api.resultUrls(output).map(api.resultDocument));
    c.sentences = docs.flatMap((d) => (d.transcripts || []).flatMap((tr) => (tr.sentences || [])
      .map((s) => ({ begin_time: s.begin_time, end_time: s.end_time, text: s.text }))))
      .sort((a, b) => a.begin_time - b.begin_time);
  }

  async function apply(c, output) {
    c.status = output.task_status;
    c.label = null;
    c.progress = output.progress ?? c.progress;
    if (!c.name || c.name === c.id) {
      const url = (output.result && output.result.file_url) || (output.results || [{}])[0].file_url;
      if (url) { c.name = basename(url); c.li.querySelector(".name").textContent = c.name; }
    }
    if (c.status === "FAILED") {
      const bad = (output.results || []).find((r) => r.code);
      c.error = `${output.code || (bad && bad.code)}: ${output.message || (bad && bad.message) || ""}`;
    }
    if (c.status === "SUCCEEDED" && !c.sentences.length) await loadResults(c, output);
    paint(c);
  }

  async function poll(c) {
    try {
      await apply(c, (await api.task(c.id)).output);
    } catch (err) {
      ctx.notify(err);
    }
    if (!FINAL.includes(c.status)) setTimeout(() => poll(c), 1500);
  }

  async function add(file) {
    const p = pick.profile();
    const temp = card(`upload-${crypto.getRandomValues(new Uint32Array(1))[0]}`, file.name);
    if (!(file.type.startsWith("audio/") || file.type.startsWith("video/") || MEDIA.test(file.name))) {
      temp.status = "FAILED";
      temp.error = `${t("unsupported")}: ${file.name}`;
      paint(temp);
      return;
    }
    temp.label = t("uploading");
    paint(temp);
    try {
      const url = await api.upload(file, p.id);
      const parameters = {};
      if (pick.language()) {
        if (p.file_form === "qwen") parameters.language = pick.language();
        else parameters.language_hints = [pick.language()];
      }
      if (pick.vocabulary()) parameters.vocabulary_id = pick.vocabulary();
      const id = await api.submitFile(p, url, parameters);
      remember(id, file.name);
      audio.set(id, URL.createObjectURL(file));
      cards.delete(temp.id);
      temp.id = id;
      cards.set(id, temp);
      temp.label = t("submitted");
      paint(temp);
      poll(temp);
    } catch (err) {
      temp.status = "FAILED";
      temp.label = null;
      temp.error = err instanceof api.ApiError ? `${err.code}: ${err.message}` : err.message;
      paint(temp);
    }
  }

  async function history() {
    let page;
    try {
      page = await api.tasks(20);
    } catch (err) {
      ctx.notify(err);
      return;
    }
    const known = names();
    // Oldest first, so the newest ends on top (cards are prepended).
    for (const out of (page.tasks || page.output?.tasks || []).slice().reverse()) {
      const fresh = !cards.has(out.task_id);
      const c = card(out.task_id, known[out.task_id]);
      try { await apply(c, out); } catch (err) { ctx.notify(err); }
      if (fresh && !FINAL.includes(c.status)) setTimeout(() => poll(c), 1500);
    }
  }

  const input = $("file-input"), drop = $("drop");
  input.addEventListener("change", () => { [...input.files].forEach(add); input.value = ""; });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    [...e.dataTransfer.files].forEach(add);
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  $("file-refresh").addEventListener("click", history);
  onLang(() => cards.forEach(paint));
  history();
}
