"""How a base model speaks text outside its corpus's templates: CER/WER/SIM on the template test list
and on the free-text list (``test_free_eval.jsonl``, 111 ordinary sentences), judged by Whisper tiny.en
and, as a second judge, Whisper base. Prints a table and writes JSON.

    python benchmarks/bench_free_text.py --data data/demo_char [--ckpt MODEL] [--free_items 111] [--json out.json]

Build the corpus first (``python -m f5rl.data.prepare_demo --out data/demo_char --coverage_min 0``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    from f5rl.eval.base_model import SHIPPED, measure
    from f5rl.text.tokenizer import build_tokenizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/demo_char", type=Path, help="demo corpus with both test lists")
    ap.add_argument("--ckpt", default=str(SHIPPED / "model.safetensors"), help="model to measure")
    ap.add_argument("--template_items", type=int, default=24, help="items of test_eval.jsonl (from the first)")
    ap.add_argument("--free_items", type=int, default=111, help="items of test_free_eval.jsonl (from the first)")
    ap.add_argument("--nfe", type=int, default=32, help="Euler steps")
    ap.add_argument("--judges", default="embedded:tiny.en,embedded:base", help="comma-separated Whisper models")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    tok = build_tokenizer("phoneme", Path(args.ckpt).with_name("vocab.txt"))
    judges = args.judges.split(",")
    results = {}
    for name, lst, n in (("template", "test_eval.jsonl", args.template_items),
                         ("free text", "test_free_eval.jsonl", args.free_items)):
        r = measure(args.ckpt, args.data / lst, n_items=n, nfe=args.nfe, asr_model=judges[0],
                    second_judges=tuple(judges[1:]))  # one synthesis, every judge
        results[f"{name} | {judges[0]}"] = {k: v for k, v in r.__dict__.items() if k not in ("per_item", "judges")}
        for judge, j in r.judges.items():
            results[f"{name} | {judge}"] = {**results[f"{name} | {judges[0]}"], **j}
        print(f"{name}: done in {r.seconds} s", flush=True)
    print("\n| list | judge | items | CER | median CER | WER | SIM | ground-truth CER | own-text (first judge) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, r in results.items():
        lst, judge = key.split(" | ")
        print(f"| {lst} | {judge} | {r['items']} | {r['cer']:.3f} | {r['median_cer']:.3f} | {r['wer']:.3f} | "
              f"{r['sim']:.3f} | {r['ground_truth_cer']:.3f} | {r['closer_to_own_text']}/{r['items']} |")
    fallbacks = sorted({t for s in (args.data / "test_free_eval.jsonl").read_text().splitlines()
                        for t in tok.tokenize(json.loads(s)["target_text"])
                        if tok.fallback is not None and tok.fallback.resolve(t) != t})
    print(f"free-text tokens read through the fallback: {fallbacks}")
    out = {"ckpt": args.ckpt, "nfe": args.nfe, "results": results, "fallback_tokens": fallbacks}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, ensure_ascii=False))
    return out


if __name__ == "__main__":
    main()
