"""Before/after measurement of a trained model on held-out test lists, paired by item.

Every system (a checkpoint, or best-of-N reranking of one) synthesises the same held-out items with
the same seeds; each item's audio is transcribed by one or more Whisper *judges* (CER/WER) and
compared with its prompt by resemblyzer (SIM). Two systems are compared item by item: the change is
the mean of per-item differences and its standard error the spread of those differences over
``sqrt(n)`` (each item is its own prompt, so items are independent draws).

The judge should not be the training reward's ASR model: a policy can learn the quirks of the model
that scores it (reward hacking); a different, larger judge shows whether speech really got clearer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from f5rl.eval.evaluate import TestItem


@dataclass
class PairedChange:
    """Mean of a metric for two systems over the same items, and the paired change ``after − before``."""

    n: int
    before: float
    after: float
    change: float
    se: float  # standard error of the mean paired change

    @property
    def relative(self) -> float:
        """Change relative to ``before`` (−0.2 = a 20% drop)."""
        return self.change / self.before if self.before else math.nan

    @property
    def z(self) -> float:
        """The change in standard errors."""
        return self.change / self.se if self.se > 0 else (0.0 if self.change == 0 else math.copysign(math.inf,
                                                                                                     self.change))


def paired_change(before: list[float], after: list[float]) -> PairedChange:
    """Paired comparison of two per-item metric lists (same items, same order); NaN pairs are left out."""
    if len(before) != len(after):
        raise ValueError(f"paired lists differ in length: {len(before)} vs {len(after)}")
    pairs = [(b, a) for b, a in zip(before, after) if not (math.isnan(b) or math.isnan(a))]
    n = len(pairs)
    if n < 2:
        raise ValueError(f"need at least 2 scored pairs, got {n}")
    diffs = [a - b for b, a in pairs]
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return PairedChange(n, sum(b for b, _ in pairs) / n, sum(a for _, a in pairs) / n, mean, math.sqrt(var / n))


class HeldOutJudge:
    """Synthesises and scores test items: CER/WER by each Whisper judge, SIM to the prompt, and the
    training reward's ranking for best-of-N (``rerank``: a :class:`RewardSet`, optional)."""

    def __init__(self, judges: tuple[str, ...] = ("embedded:base",), nfe: int = 16, seed: int = 0,
                 batch: int = 8, rerank=None, cfg_strength: float = 2.0, use_ema: bool = True,
                 retest_ms: float = 0.0) -> None:
        from f5rl.rewards.registry import build_provider

        if not judges:
            raise ValueError("HeldOutJudge needs at least one Whisper judge")
        self.judge_names, self.nfe, self.seed, self.batch, self.rerank = judges, nfe, seed, batch, rerank
        self.cfg_strength = cfg_strength  # inference guidance; 0 runs the conditional branch alone
        self.use_ema = use_ema  # a trainer checkpoint's EMA weights (False: its online weights)
        # > 0: the first judge hears every clip again after this much silence (see retest_name)
        self.retest_ms = retest_ms
        self.judges = {j: build_provider("whisper_asr", {"model": j}) for j in judges}
        self.sim = build_provider("resemblyzer_sim")

    def synthesize(self, tts, items: list[TestItem], candidates: int = 1) -> list:
        """One audio per item; with ``candidates`` > 1, the candidate (seeds seed … seed+N−1) that
        the ``rerank`` reward set scores best (best-of-N reranking with the training reward)."""
        from f5rl.audio.io import load_audio
        from f5rl.infer.tts import clip_reference

        if candidates > 1 and self.rerank is None:
            raise ValueError("best-of-N needs the reward set to rerank with (HeldOutJudge(rerank=...))")
        jobs = [(i, self.seed + c) for i in range(len(items)) for c in range(candidates)]
        prompts = {i: clip_reference(load_audio(it.prompt_wav)) for i, it in enumerate(items)}
        audio: dict[tuple[int, int], object] = {}
        for s in range(0, len(jobs), self.batch):
            chunk = jobs[s: s + self.batch]
            outs = tts.synthesize_batch([prompts[i] for i, _ in chunk], [items[i].prompt_text for i, _ in chunk],
                                        [items[i].target_text for i, _ in chunk], [seed for _, seed in chunk],
                                        nfe=self.nfe, cfg_strength=self.cfg_strength)
            for job, out in zip(chunk, outs):
                audio[job] = out.audio
        if candidates == 1:
            return [audio[(i, self.seed)] for i in range(len(items))]
        from f5rl.infer.best_of_n import rank

        best = []
        for i, it in enumerate(items):
            cands = [audio[(i, self.seed + c)] for c in range(candidates)]
            best.append(cands[rank(self.rerank, cands, it.target_text, prompts[i])[0]])
        return best

    def score(self, items: list[TestItem], audios: list) -> list[dict]:
        """Per item: ``cer@<judge>`` (and ``cer1@<judge>``, clipped at 1), ``wer@<judge>``,
        ``transcript@<judge>`` and ``sim``; with ``retest_ms``, the same four under
        ``retest_name(first judge, retest_ms)`` for the clips heard that much later."""
        import torch

        from f5rl.audio.io import load_audio
        from f5rl.rewards.base import RewardBatch

        batch = RewardBatch(list(audios), [it.target_text for it in items],
                            ref_audio=[load_audio(it.prompt_wav) for it in items])
        rows = [{"utt": it.utt, "text": it.target_text} for it in items]
        for name, judge in self.judges.items():
            self._transcribe(judge, batch, rows, name)
        if self.retest_ms > 0:
            first = self.judge_names[0]
            pad = round(self.retest_ms * batch.sample_rate / 1000)
            later = RewardBatch([torch.cat([a.new_zeros(pad), a.reshape(-1)]) for a in batch.audio], batch.texts)
            self._transcribe(self.judges[first], later, rows, retest_name(first, self.retest_ms))
        for row, s in zip(rows, self.sim(batch).scores.tolist()):
            row["sim"] = s
        return rows

    @staticmethod
    def _transcribe(judge, batch, rows: list[dict], key: str) -> None:
        """Transcribe ``batch`` with ``judge`` and write each row's ``transcript``/``cer``/``cer1``/``wer@key``."""
        from f5rl.rewards.text_metrics import char_error_rate, word_error_rate

        judge(batch)
        for row, text, hyp in zip(rows, batch.texts, judge.last_transcripts):
            row[f"transcript@{key}"] = hyp
            row[f"cer@{key}"] = char_error_rate(text, hyp)
            # one hallucinated transcript (CER 6) would outweigh dozens of items: the headline
            # mean clips each item at 1 (the whole sentence wrong)
            row[f"cer1@{key}"] = min(row[f"cer@{key}"], 1.0)
            row[f"wer@{key}"] = word_error_rate(text, hyp)

    def measure(self, ckpt, items: list[TestItem], candidates: int = 1) -> list[dict]:
        """Synthesise ``items`` with the checkpoint ``ckpt`` (best of ``candidates``) and score them."""
        from f5rl.infer.tts import TTS

        tts = TTS.from_checkpoint(ckpt, device="cpu", use_ema=self.use_ema)
        return self.score(items, self.synthesize(tts, items, candidates))


def retest_name(judge: str, ms: float) -> str:
    """The name under which :class:`HeldOutJudge` reports ``judge`` hearing each clip ``ms`` later.

    A few milliseconds of leading silence change nothing a listener hears, but they move every STFT frame
    of the recogniser's input: how often its verdict on a clip moves with them is noise of the judge's own,
    and how far it agrees with itself then bounds how far any other judge (a training reward's ASR) can."""
    return f"{judge} +{ms:g} ms"


def compare(before: list[dict], after: list[dict], metric: str) -> PairedChange:
    """Paired change of ``metric`` between two :meth:`HeldOutJudge.score` row lists of the same items."""
    if [r["utt"] for r in before] != [r["utt"] for r in after]:
        raise ValueError("the two measurements are of different items")
    return paired_change([r[metric] for r in before], [r[metric] for r in after])


@dataclass
class JudgeAgreement:
    """How a proxy metric (the training reward's ASR) orders each item's samples against the held-out
    judge's order, and what picking the best of an item's samples by each is worth to the judge.

    ``best_by_judge`` is what selection among these samples can reach at best; ``best_by_proxy`` what
    a reward that is the proxy can (best-of-N reranking). A policy trained on the proxy learns its
    ranking, so the gap between the two bounds what it can show the judge quickly."""

    items: int
    samples: int  # per item
    ranked_items: int  # items whose samples both metrics spread (Spearman is defined)
    spearman: float  # mean within-item Spearman correlation of proxy and judge
    spearman_se: float
    random: float  # the judge's metric of a random sample (mean over items of each item's mean)
    best_by_proxy: float  # ... of the sample the proxy ranks best
    best_by_judge: float  # ... of the sample the judge ranks best

    @property
    def proxy_gain(self) -> float:
        """Relative change of the judge's metric from a random sample to the proxy's pick."""
        return self.best_by_proxy / self.random - 1 if self.random else math.nan

    @property
    def judge_gain(self) -> float:
        """Relative change from a random sample to the judge's own pick (selection's ceiling)."""
        return self.best_by_judge / self.random - 1 if self.random else math.nan


def _average_ranks(xs: list[float]) -> list[float]:
    """Ranks 1..n, tied values sharing the mean of their ranks (as Spearman's rho needs)."""
    order = sorted(range(len(xs)), key=xs.__getitem__)
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in order[i: j + 1]:
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rho (Pearson correlation of average ranks); NaN when either list has no spread."""
    ra, rb = _average_ranks(a), _average_ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(var) if var > 0 else math.nan


def judge_agreement(samples: list[list[dict]], proxy: str, judge: str) -> JudgeAgreement:
    """Agreement of ``proxy`` with ``judge`` (row keys of metrics where lower is better, e.g.
    ``cer1@embedded:tiny.en`` and ``cer1@embedded:base``) over several samples of the same items:
    ``samples[k]`` is the :meth:`HeldOutJudge.score` rows of seed ``k``. Ties in a pick go to the
    earlier sample."""
    if len(samples) < 2:
        raise ValueError(f"judge agreement needs at least 2 samples per item, got {len(samples)}")
    utts = [r["utt"] for r in samples[0]]
    if any([r["utt"] for r in rows] != utts for rows in samples[1:]):
        raise ValueError("every sample's rows must list the same items in the same order")
    rhos, rand, by_proxy, by_judge = [], [], [], []
    for i in range(len(utts)):
        j = [rows[i][judge] for rows in samples]
        p = [rows[i][proxy] for rows in samples]
        rho = _spearman(p, j)
        if not math.isnan(rho):
            rhos.append(rho)
        rand.append(sum(j) / len(j))
        by_proxy.append(j[min(range(len(p)), key=p.__getitem__)])
        by_judge.append(min(j))
    mean = sum(rhos) / len(rhos) if rhos else math.nan
    se = (math.sqrt(sum((r - mean) ** 2 for r in rhos) / (len(rhos) - 1) / len(rhos)) if len(rhos) > 1
          else math.nan)
    n = len(utts)
    return JudgeAgreement(n, len(samples), len(rhos), mean, se, sum(rand) / n, sum(by_proxy) / n, sum(by_judge) / n)


@dataclass
class WordRecall:
    """How many reference words a judge heard where they belong (WER alignment hits), of how many."""

    hits: int
    words: int

    @property
    def recall(self) -> float:
        return self.hits / self.words if self.words else math.nan


def recall_by_familiarity(rows: list[dict], judge: str, known: set[str]) -> dict[str, WordRecall]:
    """Word recall of :meth:`HeldOutJudge.score` rows split into words the model trained on (``known``,
    normalised words of its training text) and ``novel`` ones: a model that learned its corpus's words
    rather than their sounds says the first and not the second."""
    from f5rl.rewards.text_metrics import word_hits

    out = {"known": WordRecall(0, 0), "novel": WordRecall(0, 0)}
    for r in rows:
        for word, hit in word_hits(r["text"], r[f"transcript@{judge}"]):
            w = out["known" if word in known else "novel"]
            w.hits, w.words = w.hits + hit, w.words + 1
    return out


def corpus_words(folder: str | Path) -> set[str]:
    """The normalised words of a prepared corpus's training text (``folder/raw``, the train split)."""
    from datasets import load_from_disk

    from f5rl.rewards.text_metrics import normalize_text

    words: set[str] = set()
    for text in load_from_disk(str(Path(folder) / "raw"))["text"]:
        words.update(normalize_text(text).split())
    return words
