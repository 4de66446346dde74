"""Batched Whisper inference on CTranslate2 (through faster-whisper's model wrapper).

This is the only module that touches model internals. It decodes a batch of independent audio
windows (each at most 30 s of 16 kHz mono) in one encoder pass and one generate call per group of
compatible requests, so many live streams share the model instead of queueing behind one another.

Two window shapes are offered:
- full window: features padded to Whisper's 30 s exactly as faster-whisper does (used for final
  results: same accuracy as offline faster-whisper);
- short window: features padded only ~1 s past the audio (2-5x faster, used for partial previews).
  Short windows make Whisper loop more easily, which the timestamp cut and repetition guard below
  contain.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import (
    get_compression_ratio,
    get_suppressed_tokens,
    merge_punctuations,
)
from rapidfuzz.distance import Levenshtein

from voxscope.engine.english_only import cjk_token_ids
from voxscope.engine.hotwords import decoder_prompt, hotwords_for
from voxscope.engine.streaming.final_guard import short_final_in_full
from voxscope.engine.text import APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS, letters, to_simplified
from voxscope.engine.types import SAMPLE_RATE, DecodeOptions, Transcript, Word

log = logging.getLogger(__name__)

HOP = 160  # samples per mel frame
FULL_FRAMES = 3000  # 30 s
SHORT_PAD_FRAMES = 100  # 1 s of padding after the audio in short windows
# Detection overrides a language hint only this sure: on 1.3 s windows of the shared clips,
# Mandarin came out at 0.91-1.00, English clips' wrong guesses at most 0.29 (benchmarks/RESULTS.md,
# "First partial, session 6").
HINT_OVERRIDE_P = 0.8
MAX_SAMPLES = 30 * SAMPLE_RATE
TIME_PRECISION = 0.02  # seconds per timestamp token

# Thresholds from Whisper / faster-whisper defaults.
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
FALLBACK_TEMPERATURES = (0.4, 0.8)
TAIL_MIN_S = 1.0  # unexplained audio after Whisper's last timestamp worth a second look
SHORT_TAIL_MIN_S = 3.0  # the same for a short-window final (see the tail repair's call)
# Padding after a tail's audio. A tail is short (the last sentence or two of a window): encoding
# it padded to 30 s cost a whole window's encoder pass (~0.85 CPU-s on 2 cores, ~40 % of a file
# window's decode) for a few seconds of speech; 5 s of padding costs about a tenth of that and
# leaves the model enough silence to see that the speech has ended.
TAIL_PAD_FRAMES = 500
# A window this short decoded with hot words in its prompt is also decoded without them: on little
# audio the prompt can outweigh the speech (hot words or digit runs "２２２" appear from nowhere).
SHORT_PROMPT_S = 4.0
PROMPT_AGREEMENT = 0.6  # least similarity of the two results for the prompted one to stand


class WhisperBackend:
    def __init__(self, model_path: Path, *, device: str = "cpu", compute_type: str = "int8",
                 cpu_threads: int = 0, workers: int = 1) -> None:
        # `workers` CTranslate2 replicas in this one model object share its weights (measured: the
        # same RSS for 1, 2 or 4); calls from that many threads at once decode in parallel, each
        # with `cpu_threads` threads.
        self.workers = max(1, workers)
        self._fw = WhisperModel(str(model_path), device=device, compute_type=compute_type,
                                cpu_threads=cpu_threads, num_workers=self.workers)
        self._model: ctranslate2.models.Whisper = self._fw.model
        self._device = device
        self._fe = self._fw.feature_extractor
        self.multilingual: bool = self._model.is_multilingual
        self.model_path = Path(model_path)
        self._tokenizers: dict[tuple[str, str], Tokenizer] = {}
        self._cjk_ids: list[int] | None = None  # computed on the first translate-task decode
        self._lock = threading.Lock()  # tokenizer cache only; decoding is single-threaded per call

    # ----------------------------------------------------------------------------------------
    @property
    def languages(self) -> list[str]:
        return list(self._fw.supported_languages)

    def tokenizer(self, task: str, language: str) -> Tokenizer:
        key = (task, language)
        with self._lock:
            tok = self._tokenizers.get(key)
            if tok is None:
                tok = Tokenizer(self._fw.hf_tokenizer, self.multilingual, task=task,
                                language=language)
                self._tokenizers[key] = tok
            return tok

    # ----------------------------------------------------------------------------------------
    def decode_batch(self, items: list[tuple[np.ndarray, DecodeOptions]]) -> list[Transcript]:
        """Decode independent windows; returns one Transcript per item, in order."""
        results: list[Transcript | None] = [None] * len(items)
        groups: dict[tuple[bool, int], list[int]] = defaultdict(list)
        for i, (audio, opts) in enumerate(items):
            full = opts.full_window or short_final_in_full(len(audio), opts)
            groups[(full, opts.beam_size)].append(i)
        for (full, beam), idxs in groups.items():
            for i, res in zip(idxs, self._decode_group([items[i] for i in idxs], full, beam),
                              strict=True):
                results[i] = res
        return [r for r in results if r is not None]

    # ----------------------------------------------------------------------------------------
    def _features(self, audio: np.ndarray) -> tuple[np.ndarray, int]:
        audio = audio[:MAX_SAMPLES].astype(np.float32, copy=False)
        feats = self._fe(audio)
        content = min(max(feats.shape[-1] - 1, 1), FULL_FRAMES)
        return feats[:, :content], content

    def _decode_group(self, items: list[tuple[np.ndarray, DecodeOptions]], full: bool,
                      beam: int, depth: int = 0, pad: int = SHORT_PAD_FRAMES) -> list[Transcript]:
        feats, contents = zip(*(self._features(a) for a, _ in items), strict=True)
        if full:
            width = FULL_FRAMES
        else:
            width = min(FULL_FRAMES, max(contents) + pad)
            width += width % 2
        batch = np.zeros((len(items), feats[0].shape[0], width), dtype=np.float32)
        for b, f in enumerate(feats):
            batch[b, :, : f.shape[1]] = f[:, :width]
        enc = self._encode(batch)

        langs, lang_probs = self._languages(enc, [o for _, o in items])
        prompts = []
        tokenizers = []
        for (_, opts), lang in zip(items, langs, strict=True):
            tok = self.tokenizer(opts.task, lang)
            tokenizers.append(tok)
            prompts.append(self._prompt(tok, opts))

        capped = [False] * len(items)  # which generations stopped at their max_new_tokens
        raw = self._generate(enc, prompts, tokenizers, beam,
                             [o.max_new_tokens for _, o in items], capped)
        out: list[Transcript] = []
        tails: list[tuple[int, float]] = []
        for b, ((_audio, opts), res) in enumerate(zip(items, raw, strict=True)):
            duration = contents[b] * HOP / SAMPLE_RATE
            tr = self._parse(res, tokenizers[b], langs[b], lang_probs[b], duration)
            if capped[b]:
                # It ran into its cap without ending: a loop (uncapped it would have run to the
                # model's limit, usually to be dropped by the guards). Nothing to show.
                tr = replace(tr, text="", words=[], tokens=[])
            if opts.temperature_fallback and self._degenerate(tr):
                tr = self._fallback(enc, b, batch.shape[0], tokenizers[b], prompts[b], tr,
                                    langs[b], lang_probs[b], duration)
            tr = self._guard(tr)
            # Finals (word timestamps) in either window (`final_window: short` too); previews
            # are cheap and soon replaced, so they keep the prompted result.
            if ((full or opts.word_timestamps) and duration < SHORT_PROMPT_S and depth == 0
                    and hotwords_for(opts.hotwords, langs[b])):
                tr = self._without_hotwords(enc, b, batch.shape[0], tokenizers[b], opts, beam, tr,
                                            langs[b], lang_probs[b], duration)
            out.append(tr)
            # Short-window finals too, past a longer gap: a 26 s sentence's final (gummy-chat,
            # forced cut) stopped after 18 s there and lost the rest (tests/gummy/test_gummy_chat.py
            # row 28); at TAIL_MIN_S an 8 kHz Opus sentence's tail echoed its last words
            # ("... built around it. The dreams built around it.", tests/realtime/test_accuracy.py).
            gap = TAIL_MIN_S if full else SHORT_TAIL_MIN_S if opts.word_timestamps else None
            if depth == 0 and tr.tokens and gap is not None and duration - tr.last_time > gap:
                tails.append((b, tr.last_time))
        if tails:
            self._decode_tails(items, out, tails, langs)

        # Word timestamps by cross-attention alignment (DTW), one call per language.
        need = [b for b, (_, o) in enumerate(items)
                if o.word_timestamps and out[b].tokens and depth == 0]
        by_lang: dict[tuple[str, str], list[int]] = defaultdict(list)
        for b in need:
            by_lang[(items[b][1].task, langs[b])].append(b)
        for (_task, _lang), idxs in by_lang.items():
            sub = enc if len(idxs) == len(items) else _select(enc, idxs)
            aligned = self._fw.find_alignment(tokenizers[idxs[0]], [out[b].tokens for b in idxs],
                                              sub, [contents[b] for b in idxs])
            for b, alignment in zip(idxs, aligned, strict=True):
                out[b].words = self._words_from_alignment(alignment, contents[b] * HOP / SAMPLE_RATE)
        for b, tr in enumerate(out):
            if not tr.words and tr.tokens:
                tr.words = self._approximate_words(tr, tokenizers[b], contents[b] * HOP / SAMPLE_RATE)
            if tr.language in ("zh", "yue"):
                tr.text = to_simplified(tr.text)
                tr.words = [Word(w.start, w.end, to_simplified(w.text), w.punctuation,
                                 to_simplified(w.raw), w.probability) for w in tr.words]
        return out

    def _encode(self, batch: np.ndarray) -> ctranslate2.StorageView:
        """Encoder output of a batch of features. On CPU full windows are encoded one at a time
        and stacked: measured with 2 threads, a batch of 4 costs as much CPU as 4 single passes
        but its attention buffers raised peak RSS by ~320 MB (4 x 30 s) against ~20 MB; the
        decoder, where batching does pay, still gets the whole batch."""
        if self._device != "cpu" or len(batch) == 1 or batch.shape[-1] < FULL_FRAMES:
            return self._model.encode(ctranslate2.StorageView.from_array(batch), to_cpu=False)
        parts = [np.asarray(self._model.encode(ctranslate2.StorageView.from_array(batch[i:i + 1]),
                                               to_cpu=False)) for i in range(len(batch))]
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(parts)))

    def _generate(self, enc: ctranslate2.StorageView, prompts: list[list[int]],
                  tokenizers: list[Tokenizer], beam: int,
                  max_new: list[int | None] | None = None,
                  capped: list[bool] | None = None) -> list:
        """One generate call per start-of-transcript position and task: CTranslate2 requires the
        position to be the same across a batch (context prompts of different lengths move it), and
        a call has one set of suppressed tokens, which the translate task widens (`_suppressed`: a
        transcription batched with a translation came out in English).
        `max_new`: per item, about this many tokens after its prompt at most (a call takes the
        largest); `capped[b]` is set where a generation stopped there rather than at its end."""
        calls: dict[tuple[int, int | None], list[int]] = defaultdict(list)
        for b, (prompt, tok) in enumerate(zip(prompts, tokenizers, strict=True)):
            calls[(prompt.index(tok.sot), tok.task)].append(b)
        raw: list = [None] * len(prompts)
        for idxs in calls.values():
            sub = enc if len(idxs) == len(prompts) else _select(enc, idxs)
            limit = self._fw.max_length
            capping = max_new is not None and all(max_new[b] is not None for b in idxs)
            if capping:
                # Measured with CTranslate2 4.x: a Whisper result (prompt after the SOT sequence
                # included) stops at max_length // 2 tokens (448 -> 224): twice prompt + cap.
                limit = min(limit, max(2 * (len(prompts[b]) + (max_new[b] or 0)) for b in idxs))
            results = self._model.generate(
                sub, [prompts[b] for b in idxs], beam_size=beam, patience=1.0, length_penalty=1.0,
                max_length=limit, return_scores=True, return_no_speech_prob=True,
                suppress_blank=True, suppress_tokens=self._suppressed(tokenizers[idxs[0]]),
                max_initial_timestamp_index=50,
            )
            for b, res in zip(idxs, results, strict=True):
                raw[b] = res
                if capping and capped is not None and max_new is not None:
                    capped[b] = len(res.sequences_ids[0]) >= limit // 2
        return raw

    def _suppressed(self, tok: Tokenizer) -> list[int]:
        """Whisper's own suppressed tokens, and in the translate task (English out) every token
        that starts a CJK character too (engine/english_only.py)."""
        suppressed = list(get_suppressed_tokens(tok, [-1]))
        if tok.task is None or tok.task != tok.tokenizer.token_to_id("<|translate|>"):
            return suppressed
        if self._cjk_ids is None:
            self._cjk_ids = cjk_token_ids(tok.tokenizer.get_vocab().items())
        return suppressed + self._cjk_ids

    def _decode_tails(self, items: list[tuple[np.ndarray, DecodeOptions]], out: list[Transcript],
                      tails: list[tuple[int, float]], langs: list[str]) -> None:
        """Decode audio after the point where Whisper stopped early, and append it.

        Whisper sometimes ends a window with a lone timestamp and EOT although speech follows
        (typically a last short sentence near the end of the audio). faster-whisper handles this
        by seeking to that timestamp and decoding again; so do we, once.
        """
        sub = []
        for b, last in tails:
            audio, opts = items[b]
            cut = int(last * SAMPLE_RATE)
            sub.append((audio[cut:], DecodeOptions(
                language=langs[b], task=opts.task, beam_size=opts.beam_size, full_window=True,
                word_timestamps=False, prompt=out[b].text[-200:] or None,
                temperature_fallback=opts.temperature_fallback)))
        # One tail at a time: in a group each tail was padded to the longest tail's width, so a
        # window's text depended on which windows shared its batch (a file decoded with 1 or 4
        # windows in flight gave different text, and a resumed task could differ from its first
        # attempt); tails are a few seconds, so batching them saved little.
        extra = [self._decode_group([item], False, item[1].beam_size, depth=1,
                                    pad=TAIL_PAD_FRAMES)[0] for item in sub]
        for (b, _), tail in zip(tails, extra, strict=True):
            if tail.empty:
                continue
            tok = self.tokenizer(items[b][1].task, langs[b])
            tr = out[b]
            tr.tokens = tr.tokens + _once(tail.tokens)
            tr.text = tok.decode(tr.tokens).strip()

    def _languages(self, enc: ctranslate2.StorageView,
                   opts: list[DecodeOptions]) -> tuple[list[str], list[float]]:
        langs = [o.language for o in opts]
        probs = [1.0 if lang else 0.0 for lang in langs]
        if not self.multilingual:
            return ["en"] * len(opts), [1.0] * len(opts)
        if all(langs):
            return langs, probs  # type: ignore[return-value]
        detected = self._model.detect_language(enc)
        for b, o in enumerate(opts):
            if langs[b]:
                continue
            allowed = set(o.allowed_languages) if o.allowed_languages else None
            for token, prob in detected[b]:
                code = token[2:-2]
                if allowed is None or code in allowed:
                    langs[b], probs[b] = code, prob
                    break
            else:
                langs[b], probs[b] = detected[b][0][0][2:-2], detected[b][0][1]
            hint = o.language_hint
            if hint and langs[b] != hint and probs[b] < HINT_OVERRIDE_P:
                langs[b] = hint
                probs[b] = next((p for t, p in detected[b] if t[2:-2] == hint), 0.0)
        return langs, probs  # type: ignore[return-value]

    def _prompt(self, tok: Tokenizer, opts: DecodeOptions) -> list[int]:
        prompt: list[int] = []
        half = self._fw.max_length // 2
        text = decoder_prompt(hotwords_for(opts.hotwords, tok.language_code), opts.prompt)
        if text and text.strip():
            prompt.append(tok.sot_prev)
            prompt.extend(tok.encode(" " + text.strip())[-(half - 1):])
        prompt.extend(tok.sot_sequence)
        if opts.prefix and opts.prefix.strip():
            prompt.append(tok.timestamp_begin)
            prompt.extend(tok.encode(" " + opts.prefix.strip())[: half - 1])
        return prompt

    def _parse(self, res, tok: Tokenizer, lang: str, lang_prob: float,
               duration: float) -> Transcript:
        seq: list[int] = list(res.sequences_ids[0])
        # CTranslate2 returns the forced prefix (tokens after the SOT sequence) with the result.
        text_tokens, last_time = self._cut_tokens(seq, tok, duration)
        trimmed = _trim_repetition(text_tokens)
        if len(trimmed) < len(text_tokens):
            last_time = duration  # a loop was cut: don't look for more speech after it
        text_tokens = trimmed
        text = tok.decode(text_tokens).strip()
        n = max(len(seq), 1)
        avg_logprob = float(res.scores[0]) * n / (n + 1)
        return Transcript(text=text, words=[], language=lang, language_probability=lang_prob,
                          no_speech_prob=float(res.no_speech_prob), avg_logprob=avg_logprob,
                          compression_ratio=get_compression_ratio(text) if text else 0.0,
                          tokens=text_tokens, last_time=last_time)

    @staticmethod
    def _cut_tokens(seq: list[int], tok: Tokenizer, duration: float) -> tuple[list[int], float]:
        """Keep text tokens of segments that start inside the audio.

        Whisper predicts a timestamp before each segment; a segment starting at or after the end of
        the real audio is text invented for the padding (a repetition loop or a hallucinated
        continuation) and is dropped.
        """
        ts_begin = tok.timestamp_begin
        out: list[int] = []
        last_time = 0.0
        last_was_ts = False
        in_segment = False
        seg_start = 0  # index in `out` where the current segment's text begins
        prev_segment: list[int] = []
        for t in seq:
            if t >= tok.eot and t < ts_begin:
                continue  # other special tokens
            if t >= ts_begin:
                ts = (t - ts_begin) * TIME_PRECISION
                if not in_segment or last_was_ts:
                    # a segment start
                    if ts >= duration - 0.1 and out:
                        break
                    in_segment = True
                    seg_start = len(out)
                else:
                    in_segment = False  # a segment end
                    segment = out[seg_start:]
                    if segment and segment == prev_segment:
                        # the same sentence again, word for word: a loop, not speech
                        del out[seg_start:]
                        break
                    prev_segment = segment
                last_time = max(last_time, min(ts, duration))
                last_was_ts = True
                continue
            last_was_ts = False
            in_segment = True
            out.append(t)
        if out and not last_was_ts:
            last_time = duration  # output ran to the end without a closing timestamp
        return out, last_time

    def _without_hotwords(self, enc, b: int, batch_size: int, tok: Tokenizer, opts: DecodeOptions,
                          beam: int, prompted: Transcript, lang: str, lang_prob: float,
                          duration: float) -> Transcript:
        """The hot-word-prompted result of a short window if it says what the audio says without
        the prompt (a few letters changed towards a hot word); else the unprompted result, which
        the near-miss correction (apply_hotwords) still biases afterwards."""
        sub = enc if batch_size == 1 else _select(enc, [b])
        prompt = self._prompt(tok, replace(opts, hotwords=()))
        res = self._generate(sub, [prompt], [tok], beam)[0]
        plain = self._guard(self._parse(res, tok, lang, lang_prob, duration))
        p, u = letters(prompted.text), letters(plain.text)
        if p == u or (u and p and len(p) <= len(u) + max(1, len(u) // 5)
                      and Levenshtein.normalized_similarity(p, u) >= PROMPT_AGREEMENT):
            return prompted
        return plain

    @staticmethod
    def _degenerate(tr: Transcript) -> bool:
        if tr.empty:
            return False
        if tr.compression_ratio > COMPRESSION_RATIO_THRESHOLD:
            return True
        silence = tr.no_speech_prob > NO_SPEECH_THRESHOLD
        return tr.avg_logprob < LOG_PROB_THRESHOLD and not silence

    def _fallback(self, enc, b: int, batch_size: int, tok: Tokenizer, prompt: list[int],
                  first: Transcript, lang: str, lang_prob: float, duration: float) -> Transcript:
        """Whisper's temperature fallback, for one item, when greedy/beam output degenerated."""
        sub = enc if batch_size == 1 else _select(enc, [b])
        candidates = [first]
        for temp in FALLBACK_TEMPERATURES:
            res = self._model.generate(
                sub, [prompt], beam_size=1, num_hypotheses=3, sampling_topk=0,
                sampling_temperature=temp, max_length=self._fw.max_length, return_scores=True,
                return_no_speech_prob=True, suppress_blank=True,
                suppress_tokens=self._suppressed(tok), max_initial_timestamp_index=50,
            )[0]
            tr = replace(self._parse(res, tok, lang, lang_prob, duration), temperature=temp)
            candidates.append(tr)
            if not self._degenerate(tr):
                return tr
        ok = [c for c in candidates if c.compression_ratio <= COMPRESSION_RATIO_THRESHOLD]
        return max(ok or candidates, key=lambda c: c.avg_logprob)

    @staticmethod
    def _guard(tr: Transcript) -> Transcript:
        """Drop output Whisper produced for silence or as a repetition loop."""
        silent = tr.no_speech_prob > NO_SPEECH_THRESHOLD and tr.avg_logprob < LOG_PROB_THRESHOLD
        looping = tr.compression_ratio > COMPRESSION_RATIO_THRESHOLD
        if silent or looping:
            return Transcript(text="", words=[], language=tr.language,
                              language_probability=tr.language_probability,
                              no_speech_prob=tr.no_speech_prob, avg_logprob=tr.avg_logprob,
                              compression_ratio=tr.compression_ratio, tokens=[],
                              temperature=tr.temperature)
        return tr

    @staticmethod
    def _words_from_alignment(alignment: list[dict], duration: float) -> list[Word]:
        merge_punctuations(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
        words: list[Word] = []
        last_end = 0.0
        for item in alignment:
            raw = item["word"]
            if not raw or not raw.strip():
                continue
            start = min(max(float(item["start"]), last_end), duration)
            end = min(max(float(item["end"]), start), duration)
            words.append(Word(start, end, raw.strip(), "", raw, float(item["probability"])))
            last_end = end
        return words

    @staticmethod
    def _approximate_words(tr: Transcript, tok: Tokenizer, duration: float) -> list[Word]:
        """Evenly spread word times over the window (partials skip the costly alignment pass)."""
        words, _ = tok.split_to_word_tokens(tr.tokens + [tok.eot])
        words = _merge_punctuation([w for w in words if w.strip()])
        if not words:
            return []
        total = sum(len(w.strip()) for w in words)
        t = 0.0
        out = []
        for w in words:
            span = duration * len(w.strip()) / total
            out.append(Word(t, t + span, w.strip(), "", w))
            t += span
        return out


def _merge_punctuation(pieces: list[str]) -> list[str]:
    """Attach punctuation-only pieces to their word, as the alignment path does (faster-whisper's
    merge_punctuations): the tokenizer splits "tried." into "tried" + ".", which would otherwise
    become a word of its own in a preview."""
    out: list[str] = []
    carry = ""  # opening punctuation waiting for the word it belongs to
    for piece in pieces:
        core = piece.strip()
        opening = all(c in PREPEND_PUNCTUATIONS for c in core)
        if out and all(c in APPEND_PUNCTUATIONS for c in core) and not (
                opening and piece[:1].isspace()):
            out[-1] += core
        elif opening:
            carry += piece
        else:
            out.append(carry + piece.lstrip() if carry else piece)
            carry = ""
    if carry:
        if out:
            out[-1] += carry.strip()
        else:
            out.append(carry)
    return out


def _select(enc: ctranslate2.StorageView, idxs: list[int]) -> ctranslate2.StorageView:
    """Rows `idxs` of a batch's encoder output. numpy reads host memory only (on a GPU
    `np.asarray` gives a 0-d object), so an output on the GPU is sliced on the host and sent back."""
    if enc.device == "cpu":
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(enc)[idxs]))
    host = np.asarray(enc.to_device(ctranslate2.Device.cpu))
    rows = ctranslate2.StorageView.from_array(np.ascontiguousarray(host[idxs]))
    return rows.to_device(ctranslate2.Device.cuda)


def _trim_repetition(tokens: list[int], min_len: int = 2, max_repeats: int = 3) -> list[int]:
    """Cut a loop: a token n-gram repeated back to back more than max_repeats times."""
    n = len(tokens)
    for size in range(min_len, min(32, n // (max_repeats + 1)) + 1):
        for start in range(0, n - size * (max_repeats + 1) + 1):
            unit = tokens[start : start + size]
            reps = 1
            pos = start + size
            while pos + size <= n and tokens[pos : pos + size] == unit:
                reps += 1
                pos += size
            if reps > max_repeats:
                return tokens[: start + size]
    return tokens


def _once(tokens: list[int]) -> list[int]:
    """A tail's tokens without whole repeats: on a few seconds of audio and its short padding the
    model may write the same sentence two or more times ("The blind man counted his old coins.
    The blind man counted his old coins." for one sentence: +8 words on bench_file_throughput's
    English file). A repeat is kept once when the whole tail is that repeat, at least 3 tokens."""
    n = len(tokens)
    for p in range(3, n // 2 + 1):
        if n % p == 0 and tokens == tokens[:p] * (n // p):
            return tokens[:p]
    return tokens
