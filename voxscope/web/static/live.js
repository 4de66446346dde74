// Live recognition: microphone -> AudioWorklet (16 kHz PCM16, 100 ms frames) -> the inference
// WebSocket with DashScope's run-task / finish-task protocol; partial text updates in place and
// settles into timed final sentences.
import * as api from "./api.js";
import { clock, download, toTXT } from "./formats.js";
import { onLang, t } from "./i18n.js";
import { fill, pickers } from "./controls.js";

const $ = (id) => document.getElementById(id);
const hex = () => [...crypto.getRandomValues(new Uint8Array(16))]
  .map((b) => b.toString(16).padStart(2, "0")).join("");

export function initLive(ctx) {
  const pick = pickers(ctx, ["recognition", "translation"], ["live-model", "live-lang", "live-vocab"],
    "paraformer-realtime-v2");
  const targetWrap = $("live-target-wrap"), targetSel = $("live-target");
  const startBtn = $("live-start"), stopBtn = $("live-stop"), meter = $("live-level");
  const statusEl = $("live-status"), list = $("live-sentences"), partialEl = $("live-partial");
  let sentences = [];
  let session = null;
  let statusKey = "live_idle";

  const status = (key) => { statusKey = key; statusEl.textContent = t(key); };
  onLang(() => status(statusKey));

  $("live-model").addEventListener("profile", () => {
    const p = pick.profile();
    const gummy = p && p.kind === "translation";
    targetWrap.hidden = !gummy;
    if (gummy) fill(targetSel, [["", t("no_translation")], ...(p.translation_targets || []).map((c) => [c, c])]);
  });
  $("live-model").dispatchEvent(new CustomEvent("profile"));

  function render() {
    list.replaceChildren(...sentences.map((s) => {
      const li = document.createElement("li");
      const time = document.createElement("span");
      time.className = "time";
      time.textContent = `${clock(s.begin_time)}–${clock(s.end_time)}`;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = s.text;
      li.append(time, text);
      if (s.translation) {
        const tr = document.createElement("span");
        tr.className = "translation";
        tr.textContent = s.translation;
        li.append(tr);
      }
      return li;
    }));
  }

  function showPartial(text) {
    partialEl.hidden = !text;
    partialEl.textContent = text ? `${text} ${t("partial")}` : "";
    partialEl.dataset.text = text || "";
  }

  /** One `result-generated` payload: recognition (`sentence`) or Gummy (`transcription`). */
  function onResult(output) {
    const s = output.sentence || output.transcription;
    if (!s || s.heartbeat) return;
    const final = s.end_time !== null && s.end_time !== undefined;
    if (!final) {
      showPartial(s.text);
      return;
    }
    const item = { begin_time: s.begin_time, end_time: s.end_time, text: s.text };
    const tr = (output.translations || []).find((x) => x.text);
    if (tr) item.translation = tr.text;
    if (item.text.trim()) sentences.push(item);
    showPartial("");
    render();
  }

  function failed(code, message) {
    const text = String(code).startsWith("Throttling") ? t("busy") : `${t("task_failed")}: ${code}: ${message}`;
    ctx.notify(text);
  }

  async function start() {
    const p = pick.profile();
    if (!p || session) return;
    ctx.notify("");
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      ctx.notify(t("mic_missing"));
      return;
    }
    startBtn.disabled = true;
    status("live_connecting");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (err) {
      ctx.notify(t(err && err.name === "NotAllowedError" ? "mic_denied" : "mic_missing"));
      startBtn.disabled = false;
      status("live_idle");
      return;
    }
    sentences = [];
    render();
    showPartial("");
    const s = { stream, started: false, queue: [], finished: false, failed: false };
    session = s;
    s.audio = new AudioContext();
    try {
      await s.audio.audioWorklet.addModule("/console/audio-worklet.js");
    } catch (err) {
      ctx.notify(`${t("mic_missing")} (${err.message})`);
      status("live_idle");
      release(s);
      return;
    }
    const source = s.audio.createMediaStreamSource(stream);
    s.node = new AudioWorkletNode(s.audio, "pcm16-capture", { numberOfOutputs: 0 });
    s.node.port.onmessage = (e) => {
      if (e.data.flushed) { s.onFlushed && s.onFlushed(); return; }
      meter.value = e.data.level;
      if (s.started && s.ws.readyState === WebSocket.OPEN) s.ws.send(e.data.pcm);
      else if (!s.started) s.queue.push(e.data.pcm);
    };
    source.connect(s.node);

    const taskId = hex();
    const parameters = { format: "pcm", sample_rate: 16000 };
    if (pick.language()) parameters.language_hints = [pick.language()];
    if (pick.vocabulary()) parameters.vocabulary_id = pick.vocabulary();
    if (p.kind === "translation") {
      parameters.source_language = pick.language() || "auto";
      parameters.transcription_enabled = true;
      parameters.translation_enabled = Boolean(targetSel.value);
      if (targetSel.value) parameters.translation_target_languages = [targetSel.value];
    }
    s.taskId = taskId;
    await api.freshToken();
    s.ws = new WebSocket(api.inferenceUrl());
    s.ws.binaryType = "arraybuffer";
    s.ws.onopen = () => s.ws.send(JSON.stringify({
      header: { action: "run-task", task_id: taskId, streaming: "duplex" },
      payload: { model: p.id, task_group: "audio", task: "asr", function: "recognition", input: {}, parameters },
    }));
    s.ws.onmessage = (e) => {
      if (typeof e.data !== "string") return;
      const msg = JSON.parse(e.data);
      const event = msg.header && msg.header.event;
      if (event === "task-started") {
        s.started = true;
        stopBtn.disabled = false;
        status("live_listening");
        s.queue.forEach((pcm) => s.ws.send(pcm));
        s.queue = [];
      } else if (event === "result-generated") {
        onResult((msg.payload && msg.payload.output) || {});
      } else if (event === "task-finished") {
        s.finished = true;
        status("live_done");
        s.ws.close(1000);
      } else if (event === "task-failed") {
        s.failed = true;
        failed(msg.header.error_code, msg.header.error_message);
        status("live_idle");
      }
    };
    s.ws.onclose = () => {
      if (!s.finished && !s.failed) {
        ctx.notify(t(s.started ? "ws_closed" : "ws_failed"));
        status("live_idle");
      }
      release(s);
    };
  }

  /** Stop capturing, send what is left, then finish-task; results keep arriving until finished. */
  async function stop() {
    const s = session;
    if (!s || s.stopping) return;
    s.stopping = true;
    stopBtn.disabled = true;
    status("live_finishing");
    await new Promise((resolve) => {
      s.onFlushed = resolve;
      s.node.port.postMessage("flush");
      setTimeout(resolve, 1000);
    });
    endCapture(s);
    if (s.ws.readyState === WebSocket.OPEN) {
      s.ws.send(JSON.stringify({ header: { action: "finish-task", task_id: s.taskId, streaming: "duplex" },
        payload: { input: {} } }));
    }
  }

  function endCapture(s) {
    s.stream.getTracks().forEach((track) => track.stop());
    if (s.audio.state !== "closed") s.audio.close();
    meter.value = 0;
  }

  function release(s) {
    if (session !== s) return;
    endCapture(s);
    session = null;
    startBtn.disabled = false;
    stopBtn.disabled = true;
    showPartial("");
  }

  startBtn.addEventListener("click", start);
  stopBtn.addEventListener("click", stop);
  $("live-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(toTXT(sentences));
      ctx.notify(t("copied"), "info");
    } catch {
      ctx.notify(t("copy_failed"));
    }
  });
  document.querySelectorAll("#panel-live [data-export]").forEach((b) => b.addEventListener("click",
    () => download(sentences, b.dataset.export, `live-${new Date().toISOString().slice(0, 19).replace(/:/g, "")}`)));
  // Expose the transcript for people who script the page (and for the browser tests).
  window.voxscopeLive = { sentences: () => sentences.slice(), partial: () => partialEl.dataset.text || "" };
}
