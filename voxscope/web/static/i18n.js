// UI text in English and Simplified Chinese: chosen from the browser's language, switchable.
// Elements name their text with data-i18n="key" (textContent) or data-i18n-attr="attr:key,...".

const TEXT = {
  en: {
    title: "voxscope console",
    tagline: "Speech recognition on this server",
    tab_live: "Live", tab_files: "Files", tab_vocab: "Vocabularies",
    language_ui: "Language",
    model: "Model", language_hint: "Language", auto: "Auto detect", vocabulary: "Vocabulary",
    none: "None", translate_to: "Translate to", no_translation: "No translation",
    start: "Start", stop: "Stop", level: "Microphone level",
    live_idle: "Press Start and speak.", live_connecting: "Connecting…",
    live_listening: "Listening…", live_finishing: "Finishing…", live_done: "Done.",
    copy: "Copy", copied: "Copied to the clipboard.", copy_failed: "Could not copy: select the text instead.",
    download: "Download", transcript: "Transcript", partial: "(speaking)",
    mic_denied: "Microphone permission was denied. Allow the microphone for this page and try again.",
    mic_missing: "No microphone was found, or this browser cannot record audio here.",
    busy: "The server is busy (too many recognitions at once). Try again in a moment.",
    ws_failed: "Could not connect to the recognition service.",
    ws_closed: "The connection closed before the task finished.",
    task_failed: "Failed",
    drop_here: "Drop audio or video files here, or",
    pick_files: "choose files",
    unsupported: "Not an audio or video file this server can read",
    uploading: "Uploading", submitted: "Queued",
    PENDING: "Queued", RUNNING: "Transcribing", SUCCEEDED: "Done", FAILED: "Failed",
    CANCELED: "Canceled", UNKNOWN: "Unknown",
    history: "Tasks", no_tasks: "No tasks yet.", refresh: "Refresh", cancel: "Cancel",
    play_hint: "Select a sentence to play it.",
    no_audio: "The audio is not in this browser any more (pick the file again to play it).",
    vocab_list: "Your vocabularies", vocab_new: "New vocabulary", vocab_none: "No vocabularies yet.",
    edit: "Edit", delete: "Delete", save: "Save", close: "Close", add_word: "Add word",
    prefix: "Prefix", prefix_rule: "1–9 lowercase letters or digits",
    target_model: "Model", word: "Word or phrase", weight: "Weight", lang: "Language",
    remove: "Remove", words_count: "{n} of {max} words",
    confirm_delete: "Delete vocabulary {id}?", saved: "Saved.", deleted: "Deleted.",
    err_text_empty: "Enter a word.",
    err_text_chars: "At most {max} characters for non-Latin text.",
    err_text_words: "At most {max} words for Latin text.",
    err_duplicate: "Listed twice.", err_prefix: "Use 1–9 lowercase letters or digits.",
    err_count: "At most {max} words.", err_fix: "Fix the marked fields first.",
    modified: "Modified",
    key_title: "API key", key_prompt: "This server needs an API key. It is exchanged for a short-lived token; the key itself is not kept.",
    key_submit: "Continue", key_wrong: "That API key was not accepted.",
    key_no_tokens: "This server does not issue tokens (POST /api/v1/tokens), so this page cannot use a key safely. Ask the operator for a server with token support, or use the SDK.",
    key_expired: "Your session token expired. Enter the API key again.",
    error: "Error",
    tab_usage: "Usage", usage_today: "Today (UTC)", usage_month: "Last 30 days",
    usage_audio: "Audio", usage_requests: "Requests", usage_tasks: "Tasks", usage_failures: "Failures",
    usage_none: "No usage yet.", usage_other: "(other)",
    usage_range: "Recognitions made with your key, {since} to {until} (UTC days); audio as h:mm:ss.",
  },
  "zh-CN": {
    title: "voxscope 控制台",
    tagline: "本服务器上的语音识别",
    tab_live: "实时", tab_files: "文件", tab_vocab: "热词表",
    language_ui: "界面语言",
    model: "模型", language_hint: "语种", auto: "自动识别", vocabulary: "热词表",
    none: "无", translate_to: "翻译为", no_translation: "不翻译",
    start: "开始", stop: "停止", level: "麦克风音量",
    live_idle: "点击“开始”后说话。", live_connecting: "正在连接…",
    live_listening: "正在聆听…", live_finishing: "正在收尾…", live_done: "完成。",
    copy: "复制", copied: "已复制到剪贴板。", copy_failed: "无法复制，请手动选择文本。",
    download: "下载", transcript: "转写结果", partial: "（识别中）",
    mic_denied: "麦克风权限被拒绝。请允许本页面使用麦克风后重试。",
    mic_missing: "未找到麦克风，或此浏览器无法在此录音。",
    busy: "服务器繁忙（同时进行的识别过多），请稍后重试。",
    ws_failed: "无法连接识别服务。",
    ws_closed: "任务结束前连接已关闭。",
    task_failed: "失败",
    drop_here: "将音频或视频文件拖放到这里，或",
    pick_files: "选择文件",
    unsupported: "不是本服务器能读取的音频或视频文件",
    uploading: "上传中", submitted: "排队中",
    PENDING: "排队中", RUNNING: "转写中", SUCCEEDED: "完成", FAILED: "失败",
    CANCELED: "已取消", UNKNOWN: "未知",
    history: "任务", no_tasks: "暂无任务。", refresh: "刷新", cancel: "取消",
    play_hint: "点击句子即可播放该段音频。",
    no_audio: "此浏览器中已没有该音频（重新选择文件即可播放）。",
    vocab_list: "我的热词表", vocab_new: "新建热词表", vocab_none: "暂无热词表。",
    edit: "编辑", delete: "删除", save: "保存", close: "关闭", add_word: "添加热词",
    prefix: "前缀", prefix_rule: "1–9 个小写字母或数字",
    target_model: "模型", word: "热词", weight: "权重", lang: "语种",
    remove: "移除", words_count: "{n} / {max} 个热词",
    confirm_delete: "删除热词表 {id}？", saved: "已保存。", deleted: "已删除。",
    err_text_empty: "请输入热词。",
    err_text_chars: "非拉丁文字最多 {max} 个字符。",
    err_text_words: "拉丁文字最多 {max} 个单词。",
    err_duplicate: "重复。", err_prefix: "请使用 1–9 个小写字母或数字。",
    err_count: "最多 {max} 个热词。", err_fix: "请先修正标出的字段。",
    modified: "修改时间",
    key_title: "API Key", key_prompt: "此服务器需要 API Key。它会被换成短期令牌，页面不保存 Key 本身。",
    key_submit: "继续", key_wrong: "API Key 无效。",
    key_no_tokens: "此服务器不签发令牌（POST /api/v1/tokens），本页面无法安全地使用 Key。请联系管理员启用令牌，或使用 SDK。",
    key_expired: "会话令牌已过期，请重新输入 API Key。",
    error: "错误",
    tab_usage: "用量", usage_today: "今天（UTC）", usage_month: "最近 30 天",
    usage_audio: "音频时长", usage_requests: "请求数", usage_tasks: "任务数", usage_failures: "失败数",
    usage_none: "暂无用量。", usage_other: "（其他）",
    usage_range: "使用您的 Key 进行的识别，{since} 至 {until}（UTC 日期）；音频时长为 时:分:秒。",
  },
};

export const LANGS = { en: "English", "zh-CN": "简体中文" };
const STORE = "voxscope.ui-lang";

function initial() {
  const saved = localStorage.getItem(STORE);
  if (saved && TEXT[saved]) return saved;
  return (navigator.languages || [navigator.language || "en"])
    .some((l) => l.toLowerCase().startsWith("zh")) ? "zh-CN" : "en";
}

let current = initial();
const listeners = [];

export const lang = () => current;

/** The text for key in the current language, {name} placeholders filled from vars. */
export function t(key, vars = {}) {
  const s = TEXT[current][key] ?? TEXT.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

export function apply(root = document) {
  document.documentElement.lang = current;
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-attr]").forEach((el) => {
    for (const pair of el.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr.trim(), t(key.trim()));
    }
  });
  document.title = t("title");
}

export function setLang(code) {
  if (!TEXT[code]) return;
  current = code;
  localStorage.setItem(STORE, code);
  apply();
  listeners.forEach((f) => f(code));
}

/** Call f after every language switch (to re-render dynamic text). */
export const onLang = (f) => listeners.push(f);
