"""Phoneme coverage of a corpus, and a coverage pass that adds sentences for rare tokens.

A phoneme model's vocabulary is the whole inventory (``f5rl.text.inventory``), but a row is only
learned from training text that contains its token. :func:`token_counts` counts a corpus's tokens
(what ``token_counts.json`` beside a vocab records); :func:`coverage_sentences` writes extra
train-only sentences from English words that contain each token seen fewer than ``n_min`` times,
so rare sounds (unstressed ``ʌ``, ``ʔ``, ``n̩``, ...) get trained rows. The words come from the
``english-words`` package (its web2 list), installed with the ``demo`` extra.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

FRAMES = ("Please say {w} again.", "She wrote {w} on the {noun}.", "The word {w} was on the {noun}.",
          "{name} said {w} twice.")


def token_counts(texts: list[str]) -> Counter:
    """Phoneme-token occurrences over ``texts`` (every inventory token present, zero when unseen)."""
    from f5rl.text.inventory import inventory
    from f5rl.text.phonemes import phonemize

    counts = Counter({t: 0 for t in inventory()})
    for t in texts:
        counts.update(phonemize(t))
    return counts


def write_counts(counts: Counter, path: Path, source: str) -> Path:
    """``token_counts.json``: the training occurrences of each token of a vocab (beside its vocab.txt)."""
    from f5rl.utils.atomic import atomic_write_text

    return atomic_write_text(path, json.dumps({"source": source, "counts": dict(counts)}, ensure_ascii=False,
                                              indent=0) + "\n")


def record_training(save_dir: Path, corpus: Path, texts: Callable[[], list[str]], initial: Path | None = None) -> dict:
    """Add a training corpus to ``save_dir/token_counts.json``: the phoneme tokens of every corpus a run
    (and the weights it started from) trained on, so an exported model knows which rows are trained.

    Each corpus counts once however often the run resumes on it (keyed by its resolved path); its counts
    are its own ``token_counts.json`` when it has one (``prepare_demo`` writes it), else counted from
    ``texts()`` (called only then). The first record also takes the counts beside the initial weights
    (``initial``'s folder, e.g. the shipped demo base's) when they are outside the save dir."""
    from f5rl.text.inventory import COUNTS_FILE
    from f5rl.utils.atomic import atomic_write_text

    path = Path(save_dir) / COUNTS_FILE
    record = json.loads(path.read_text()) if path.is_file() else {"corpora": {}}
    corpora = record.setdefault("corpora", {})
    if not path.is_file() and initial is not None and Path(initial).parent.resolve() != Path(save_dir).resolve():
        beside = Path(initial).with_name(COUNTS_FILE)
        if beside.is_file():
            corpora[f"initial weights {initial}"] = json.loads(beside.read_text())["counts"]
    key = str(Path(corpus).resolve())
    if key not in corpora:
        own = Path(corpus) / COUNTS_FILE
        corpora[key] = json.loads(own.read_text())["counts"] if own.is_file() else dict(token_counts(texts()))
    total: Counter = Counter()
    for counts in corpora.values():
        total.update(counts)
    record.update(source=f"training occurrences over {len(corpora)} corpora: " + "; ".join(corpora),
                  counts=dict(total))
    atomic_write_text(path, json.dumps(record, ensure_ascii=False, indent=0) + "\n")
    return record


def coverage_report(counts: Counter, n_min: int) -> dict:
    """How many inventory tokens the corpus trains, and which ones it sees fewer than ``n_min`` times."""
    from f5rl.text.inventory import inventory

    inv = inventory()
    rare = {t: counts.get(t, 0) for t in inv if counts.get(t, 0) < n_min}
    return {"tokens": len(inv), "seen": sum(counts.get(t, 0) > 0 for t in inv), "min_count": n_min,
            "below_min": rare}


def coverage_sentences(counts: Counter, n_min: int, seed: int = 0, max_words: int = 60000,
                       names=("Anna", "Tom"), nouns=("table", "letter")) -> tuple[list[str], dict[str, int]]:
    """Sentences that raise every token below ``n_min`` to ``n_min`` where English words contain it.

    Returns the sentences and the tokens still below ``n_min`` (no word of the list has them)."""
    try:
        from english_words import get_english_words_set
    except ImportError as err:
        raise ImportError("the coverage pass needs English words: pip install 'f5rl[demo]'") from err
    from f5rl.text.inventory import inventory
    from f5rl.text.phonemes import phonemize

    rng = random.Random(seed)
    words = sorted(w for w in get_english_words_set(["web2"], lower=True, alpha=True) if 3 <= len(w) <= 10)
    rng.shuffle(words)
    counts = Counter(counts)
    need = {t for t in inventory() if counts[t] < n_min and t.strip(" ,.?!;:")}
    out = []
    for w in words[:max_words]:
        if not need:
            break
        toks = phonemize(w)
        if not need.intersection(toks):
            continue
        s = rng.choice(FRAMES).format(w=w, name=rng.choice(names), noun=rng.choice(nouns))
        out.append(s)
        counts.update(phonemize(s))
        need = {t for t in need if counts[t] < n_min}
    return out, {t: counts[t] for t in sorted(need)}


def free_text_sentences() -> list[str]:
    """The free-text held-out sentences (``assets/text/free_text_en.txt``: 111 ordinary English sentences
    written for f5rl, none from the demo grammar)."""
    path = Path(__file__).resolve().parents[1] / "assets" / "text" / "free_text_en.txt"
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
