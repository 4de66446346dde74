// The model / language / vocabulary pickers shared by the Live and Files views.
import { onLang, t } from "./i18n.js";

const name = (code) => {
  try { return new Intl.DisplayNames([document.documentElement.lang], { type: "language" }).of(code); }
  catch { return code; }
};

/** Fill a <select> with [value, label] pairs, keeping the selection when it still exists. */
export function fill(select, pairs, keep = true) {
  const was = select.value;
  select.replaceChildren(...pairs.map(([v, label]) => new Option(label, v)));
  if (keep && pairs.some(([v]) => v === was)) select.value = was;
}

/**
 * Wire a model select (profiles of `kinds`, `preferred` first if present) to its language and
 * vocabulary selects; returns { profile(), language(), vocabulary() }.
 */
export function pickers(ctx, kinds, ids, preferred) {
  const [modelSel, langSel, vocabSel] = ids.map((id) => document.getElementById(id));
  const profiles = ctx.models.filter((m) => kinds.includes(m.kind)
    && (m.sample_rates === "any" || m.kind === "file" || m.sample_rates.includes(16000)));
  let vocabularies = [];
  const profile = () => profiles.find((p) => p.id === modelSel.value);

  const refresh = () => {
    const p = profile();
    fill(langSel, [["", t("auto")], ...(p ? p.languages : []).map((c) => [c, `${name(c)} (${c})`])]);
    fill(vocabSel, [["", t("none")], ...vocabularies
      .filter((v) => !v.target_model || !p || v.target_model === p.id)
      .map((v) => [v.vocabulary_id, v.vocabulary_id])]);
    vocabSel.disabled = !p || !p.hotwords;
    if (vocabSel.disabled) vocabSel.value = "";
    modelSel.dispatchEvent(new CustomEvent("profile"));
  };
  fill(modelSel, profiles.map((p) => [p.id, p.id]));
  if (profiles.some((p) => p.id === preferred)) modelSel.value = preferred;
  modelSel.addEventListener("change", refresh);
  ctx.vocabListeners.push((list) => { vocabularies = list; refresh(); });
  onLang(refresh); // "Auto detect", "None" and language names follow the UI language
  refresh();
  return { profile, language: () => langSel.value, vocabulary: () => vocabSel.value, refresh };
}
