// Transcript documents in the browser (TXT, SRT, WebVTT, JSON) from sentences with ms times.
// The Python twin for the CLI and the OpenAI endpoint is voxscope/service/formats.py.

/** HH:MM:SS<sep>mmm from milliseconds; sep is "," for SRT and "." for WebVTT. */
export function stamp(ms, sep) {
  const t = Math.max(0, Math.round(ms || 0));
  const h = Math.floor(t / 3600000), m = Math.floor(t / 60000) % 60;
  const s = Math.floor(t / 1000) % 60, r = t % 1000;
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(h)}:${p(m)}:${p(s)}${sep}${p(r, 3)}`;
}

/** m:ss.s for on-screen times. */
export function clock(ms) {
  const t = Math.max(0, ms || 0) / 1000;
  const m = Math.floor(t / 60);
  return `${m}:${(t - m * 60).toFixed(1).padStart(4, "0")}`;
}

const lines = (s) => [s.text.trim(), ...(s.translation ? [s.translation.trim()] : [])].join("\n");

export function toSRT(sentences) {
  return sentences.map((s, i) =>
    `${i + 1}\n${stamp(s.begin_time, ",")} --> ${stamp(s.end_time, ",")}\n${lines(s)}\n\n`).join("");
}

export function toVTT(sentences) {
  return "WEBVTT\n\n" + sentences.map((s) =>
    `${stamp(s.begin_time, ".")} --> ${stamp(s.end_time, ".")}\n${lines(s)}\n\n`).join("");
}

export function toTXT(sentences) {
  return sentences.map(lines).join("\n") + (sentences.length ? "\n" : "");
}

export function toJSON(sentences, extra = {}) {
  return JSON.stringify({ ...extra, sentences }, null, 2) + "\n";
}

const WRITERS = {
  txt: [toTXT, "text/plain"], srt: [toSRT, "application/x-subrip"],
  vtt: [toVTT, "text/vtt"], json: [toJSON, "application/json"],
};

/** Save the sentences as <base>.<kind> through a download link. */
export function download(sentences, kind, base) {
  const [write, mime] = WRITERS[kind];
  const url = URL.createObjectURL(new Blob([write(sentences)], { type: `${mime};charset=utf-8` }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `${base}.${kind}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
