"""Synthesise the offline multi-speaker demo corpus: ``data/demo_char/``.

Sentences come from a seeded template grammar over a small English vocabulary (so a tiny model
sees every word many times); six speakers read them: the Piper ``joe`` voice and five espeak-ng
voice variants with their own pitch and rate. Audio is trimmed of silence, loudness-normalised
and resampled to 24 kHz. Sentences are split into train and held-out test sets (no test
sentence is in train). Reproducible from ``--seed``; no network.

    python -m f5rl.data.prepare_demo                 # 1200 utterances, ~0.6 h
    python -m f5rl.data.prepare_demo --sentences 60  # a small one for tests

Writes ``raw/`` + ``duration.json`` + ``vocab.txt`` (train), ``test.jsonl`` (held out),
``wavs/`` and ``speakers.json`` (who is who and, when resemblyzer is installed, the measured
same/different-speaker cosine similarity).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from f5rl.data.engines import EspeakEngine, EspeakVoice, PiperEngine
from f5rl.utils.cli import command_parser

SPEAKERS: dict[str, EspeakVoice | None] = {
    "joe": None,  # Piper
    "ava": EspeakVoice("en-us+f2", rate=160, pitch=70, pitch_range=60),
    "max": EspeakVoice("en-us+m3", rate=150, pitch=35, pitch_range=40),
    "ivy": EspeakVoice("en-us+f3", rate=160, pitch=55, pitch_range=50),
    "sam": EspeakVoice("en+m7", rate=175, pitch=45, pitch_range=30),
    "leo": EspeakVoice("en-us+m1", rate=140, pitch=25, pitch_range=50),
}

_WORDS = {
    "name": ["Anna", "Peter", "Maria", "Tom", "Lucy", "David", "Emma", "John", "Sara", "Mark"],
    "adj": ["small", "red", "old", "quiet", "bright", "cold", "green", "happy", "heavy", "soft", "tall", "warm"],
    "noun": ["dog", "cat", "book", "car", "house", "tree", "boat", "bird", "lamp", "chair", "garden", "river",
             "window", "letter", "apple", "table"],
    "plural": ["birds", "boats", "books", "apples", "chairs", "trees", "cars", "lamps", "letters", "cups"],
    "verb_past": ["found", "painted", "moved", "cleaned", "opened", "carried", "watched", "fixed", "bought", "saw"],
    "verb": ["open", "close", "clean", "move", "paint", "carry", "fix", "find", "bring", "check"],
    "place": ["station", "market", "bridge", "school", "harbor", "kitchen", "park", "library"],
    "time": ["this morning", "last night", "on Monday", "after lunch", "in the evening", "today", "at noon"],
    "adverb": ["slowly", "quickly", "carefully", "quietly", "again", "today", "now"],
    "number": ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"],
}

_TEMPLATES = [
    "The {adj} {noun} is near the {place}.",
    "{name} {verb_past} the {adj} {noun} {time}.",
    "Please {verb} the {noun} {adverb}.",
    "Can you {verb} the {adj} {noun}?",
    "We saw {number} {plural} near the {place}.",
    "{name} and {name} {verb_past} a {noun} {time}.",
    "There are {number} {adj} {plural} in the {place}.",
    "My {noun} is {adj}, but your {noun} is {adj}.",
    "{name} will {verb} the {noun} at the {place}.",
    "Did {name} {verb} the {adj} {noun} {time}?",
]


def make_sentences(n: int, seed: int) -> list[str]:
    """``n`` distinct sentences from the template grammar."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        tmpl = rng.choice(_TEMPLATES)
        s = tmpl
        while "{" in s:
            start = s.index("{")
            key = s[start + 1: s.index("}", start)]
            s = s[:start] + rng.choice(_WORDS[key]) + s[s.index("}", start) + 1:]
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def trim_and_normalize(audio: np.ndarray, sr: int, top_db: float = 40.0, pad_s: float = 0.08,
                       target_rms_db: float = -20.0) -> np.ndarray:
    """Cut leading/trailing silence (frames ``top_db`` below the peak frame), keep ``pad_s`` of
    margin, and scale to ``target_rms_db`` RMS with the peak kept below 0.95."""
    frame = int(0.02 * sr)
    n = len(audio) // frame
    if n == 0:
        return audio
    energy = np.sqrt((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12)
    db = 20 * np.log10(energy / energy.max())
    voiced = np.nonzero(db > -top_db)[0]
    pad = int(pad_s * sr)
    start = max(voiced[0] * frame - pad, 0)
    end = min((voiced[-1] + 1) * frame + pad, len(audio))
    out = audio[start:end]
    rms = np.sqrt((out**2).mean() + 1e-12)
    out = out * (10 ** (target_rms_db / 20) / rms)
    peak = np.abs(out).max()
    return (out * (0.95 / peak) if peak > 0.95 else out).astype(np.float32)


def build(out_dir: str | Path = "data/demo_char", sentences: int = 420, test_fraction: float = 0.1,
          seed: int = 1234, speakers: list[str] | None = None, report_similarity: bool = True,
          progress: Callable[[int, int], None] | None = None, extra_train_sentences: int = 0,
          coverage_min: int = 0, free_text: bool = True, broad_train_sentences: int = 0) -> dict:
    """Synthesise the corpus; returns the summary written to ``speakers.json``.

    ``extra_train_sentences`` more sentences go to train only. The first ``sentences`` sentences, the
    held-out split and the test lists are exactly those of the corpus without them (the grammar draws
    sentences in sequence and the split samples from ``range(sentences)``), so a model trained on the
    larger corpus is still measured on text it never saw.

    ``broad_train_sentences`` more train-only sentences (after those) are common English words in random
    order (``f5rl.data.broad_text``), so a model learns English beyond the grammar's words; none is a
    held-out sentence of either test list.

    ``coverage_min`` > 0 adds train-only sentences (after all others) until every phoneme token that
    English words contain occurs that often (``f5rl.data.coverage``). ``free_text`` also writes the
    free-text test list (``test_free_eval.jsonl``: 111 ordinary sentences, none from the grammar, read
    in the voices of held-out utterances, which are their prompts).
    """
    from f5rl.audio.io import resample, save_audio
    from f5rl.data.prepare import Row, tokens_for_vocab, write_dataset

    speakers = speakers or list(SPEAKERS)
    unknown = [s for s in speakers if s not in SPEAKERS]
    if unknown:
        raise ValueError(f"unknown demo speakers {unknown}; available: {list(SPEAKERS)}")
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    if extra_train_sentences < 0:
        raise ValueError(f"extra_train_sentences must be >= 0, got {extra_train_sentences}")
    texts = make_sentences(sentences + extra_train_sentences, seed)
    if broad_train_sentences < 0:
        raise ValueError(f"broad_train_sentences must be >= 0, got {broad_train_sentences}")
    if broad_train_sentences:
        from f5rl.data.broad_text import broad_sentences
        from f5rl.data.coverage import free_text_sentences

        texts += broad_sentences(broad_train_sentences, seed, exclude={*texts, *free_text_sentences()})
    coverage = None
    if coverage_min > 0:
        from f5rl.data.coverage import coverage_sentences, token_counts

        extra, uncovered = coverage_sentences(token_counts(texts), coverage_min, seed)
        texts += extra
        coverage = {"sentences": len(extra), "uncovered": uncovered}
    n_test = max(len(speakers), int(round(sentences * test_fraction)))
    test_idx = set(rng.sample(range(sentences), n_test))
    piper = PiperEngine() if "joe" in speakers else None
    espeak = EspeakEngine()
    t0 = time.time()
    train_rows: list[Row] = []
    train_spk: list[str] = []
    test_rows: list[dict] = []
    for i, text in enumerate(texts):
        spk = speakers[i % len(speakers)]
        voice = SPEAKERS[spk]
        audio, sr = piper.synthesize(text) if voice is None else espeak.synthesize(text, voice, seed + i)
        audio = resample(trim_and_normalize(audio, sr), sr, 24000)
        rel = f"wavs/{spk}_{i:04d}.wav"
        save_audio(out_dir / rel, audio)
        dur = len(audio) / 24000
        if i in test_idx:
            test_rows.append({"audio_path": rel, "text": text, "duration": dur, "speaker": spk})
        else:
            train_rows.append(Row(rel, text, dur))
            train_spk.append(spk)
        if progress:
            progress(i + 1, len(texts))
    synth_s = time.time() - t0
    write_dataset(train_rows, out_dir, "char", extra={"speaker": train_spk})
    # the vocab covers test sentences too, so held-out text has no unknown characters
    from f5rl.text.vocab import build_char_vocab, write_vocab

    write_vocab(out_dir / "vocab.txt", build_char_vocab(texts))
    # the phoneme vocab of the demo base model (model.tokenizer=phoneme, F5TTS_demo_base): the whole
    # inventory, with the train split's counts beside it (rows of unseen tokens fall back when read)
    from f5rl.data.coverage import coverage_report, token_counts, write_counts

    write_vocab(out_dir / "vocab_phoneme.txt", tokens_for_vocab(texts, "phoneme"))
    counts = token_counts([r.text for r in train_rows])
    write_counts(counts, out_dir / "token_counts.json", f"train split of {out_dir.name} (prepare_demo seed {seed})")
    with open(out_dir / "test.jsonl", "w", encoding="utf-8") as f:
        for row in test_rows:
            f.write(json.dumps(row) + "\n")
    summary = {
        "seed": seed, "sentences": sentences, "extra_train_sentences": extra_train_sentences,
        "broad_train_sentences": broad_train_sentences,
        "speakers": {s: (SPEAKERS[s].__dict__ if SPEAKERS[s] else "piper:joe") for s in speakers},
        "train_items": len(train_rows), "test_items": len(test_rows),
        "train_hours": round(sum(r.duration for r in train_rows) / 3600, 3), "synthesis_seconds": round(synth_s, 1),
        "phoneme_coverage": {**coverage_report(counts, max(coverage_min, 1)), "coverage_pass": coverage},
    }
    from f5rl.data.test_lists import demo_test_lists

    # prompts from the train rows of the first `sentences` sentences (the same lists with or without extras)
    demo_test_lists(out_dir, seed, prompt_pool=len(train_rows) - (len(texts) - sentences))
    if free_text:
        free_text_list(out_dir, test_rows, seed, piper, espeak)
    if report_similarity:
        summary["similarity"] = speaker_similarity(out_dir, train_rows, train_spk)
    (out_dir / "speakers.json").write_text(json.dumps(summary, indent=2))
    return summary


def free_text_list(out_dir: Path, test_rows: list[dict], seed: int, piper, espeak) -> Path:
    """``test_free_eval.jsonl``: each free-text sentence read by the speaker of a held-out utterance
    (its prompt), so CER, SIM and the ground-truth row are measured as on the template list."""
    from f5rl.audio.io import resample, save_audio
    from f5rl.data.coverage import free_text_sentences

    rows = []
    for i, text in enumerate(free_text_sentences()):
        prompt = test_rows[i % len(test_rows)]
        voice = SPEAKERS[prompt["speaker"]]
        audio, sr = piper.synthesize(text) if voice is None else espeak.synthesize(text, voice, seed + 100_000 + i)
        rel = f"free_wavs/{prompt['speaker']}_free{i:03d}.wav"
        save_audio(out_dir / rel, resample(trim_and_normalize(audio, sr), sr, 24000))
        rows.append({"utt": f"free{i:03d}", "prompt_text": prompt["text"],
                     "prompt_wav": prompt["audio_path"], "target_text": text,  # relative to the list's folder
                     "target_wav": rel, "speaker": prompt["speaker"]})
    path = out_dir / "test_free_eval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def speaker_similarity(out_dir: Path, rows: list, spk: list[str], per_speaker: int = 6) -> dict | str:
    """Mean cosine of resemblyzer embeddings for same- and different-speaker pairs."""
    try:
        from resemblyzer import VoiceEncoder
    except ImportError:
        return "not measured (pip install resemblyzer webrtcvad-wheels)"
    from f5rl.audio.io import load_audio, resample

    enc = VoiceEncoder("cpu", verbose=False)
    embs: dict[str, list[np.ndarray]] = {}
    for row, s in zip(rows, spk):
        if len(embs.setdefault(s, [])) < per_speaker:
            wav = resample(load_audio(out_dir / row.audio_path).numpy(), 24000, 16000)
            embs[s].append(enc.embed_utterance(wav))
    names = sorted(embs)
    same, diff, matrix = [], [], {}
    for a in names:
        for b in names:
            sims = [float(x @ y) for i, x in enumerate(embs[a]) for j, y in enumerate(embs[b]) if a != b or i < j]
            matrix[f"{a}-{b}"] = round(float(np.mean(sims)), 3)
            (same if a == b else diff).extend(sims)
    return {"same_speaker_mean": round(float(np.mean(same)), 3),
            "different_speaker_mean": round(float(np.mean(diff)), 3), "pairs": matrix}


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--out", default="data/demo_char", help="the corpus folder written")
    ap.add_argument("--sentences", type=int, default=1200, help="sentences synthesised (each said by one voice)")
    ap.add_argument("--test_fraction", type=float, default=0.1, help="share of sentences held out (test.jsonl)")
    ap.add_argument("--seed", type=int, default=1234, help="seed of sentences, voices and the split")
    ap.add_argument("--speakers", default=",".join(SPEAKERS), help="comma-separated Piper voices")
    ap.add_argument("--extra_train_sentences", type=int, default=0,
                    help="more train-only sentences; the held-out split stays that of --sentences")
    ap.add_argument("--broad_train_sentences", type=int, default=0,
                    help="train-only sentences of common English words in random order (f5rl.data.broad_text), "
                         "for a model that says any English sentence, not only the grammar's words")
    ap.add_argument("--coverage_min", type=int, default=0,
                    help="add train-only sentences until every phoneme token occurs this often (default 0: none; "
                         "e.g. 20 for a corpus that trains every row)")
    ap.add_argument("--no_free_text", action="store_true", help="skip the free-text test list (test_free_eval.jsonl)")
    ap.add_argument("--no_similarity", action="store_true", help="skip the same/different-speaker similarity report")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    bar = tqdm(total=args.sentences + args.extra_train_sentences + args.broad_train_sentences,
               desc="synthesising", unit="utt")
    summary = build(args.out, args.sentences, args.test_fraction, args.seed, args.speakers.split(","),
                    not args.no_similarity, progress=lambda i, n: bar.update(1),
                    extra_train_sentences=args.extra_train_sentences, coverage_min=args.coverage_min,
                    free_text=not args.no_free_text, broad_train_sentences=args.broad_train_sentences)
    bar.close()
    cov = summary["phoneme_coverage"]
    print(f"phoneme coverage: {cov['seen']}/{cov['tokens']} tokens in the train split; below {cov['min_count']}: "
          f"{cov['below_min'] or 'none'}")
    sim = summary.get("similarity")
    print(f"demo corpus in {args.out}: {summary['train_items']} train / {summary['test_items']} test utterances, "
          f"{summary['train_hours']} h, synthesis {summary['synthesis_seconds']} s")
    if isinstance(sim, dict):
        print(f"speaker cosine (resemblyzer): same {sim['same_speaker_mean']}, "
              f"different {sim['different_speaker_mean']}")


if __name__ == "__main__":
    main()
