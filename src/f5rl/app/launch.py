"""The listening page: hear up to four checkpoints side by side, browse evaluate and prefs outputs.

Starts on the shipped demo base (and any checkpoints named), offline, on loopback:

    python -m f5rl.app [--model ckpts/run/model_last.pt ...] [--corpus data/demo_char] [--port 7860]

Needs the ``app`` extra (``pip install -e '.[app]'``); ``make app`` installs it and starts the page.
"""

from __future__ import annotations

import os
from pathlib import Path

from f5rl.utils.cli import command_parser, one_line_errors


def parser():
    ap = command_parser(__doc__)
    ap.add_argument("--model", action="append", default=[],
                    help="a checkpoint to offer (repeatable): PATH, or PATH,model_cfg=F5TTS_v1_Base,vocab=FILE for "
                         "released F5 weights; the shipped demo base is always offered")
    ap.add_argument("--corpus", default=None,
                    help="a demo corpus (python -m f5rl.data.prepare_demo) whose held-out utterances are offered "
                         "as prompts (default: data/demo_char when it exists)")
    ap.add_argument("--prompt", default=None, help="prompt audio the form starts with")
    ap.add_argument("--prompt_text", default="", help="transcript of --prompt")
    ap.add_argument("--text", default="", help="text the form starts with")
    ap.add_argument("--nfe", type=int, default=32, help="Euler steps the form starts with")
    ap.add_argument("--mos", default="dnsmos", help="MOS provider shown beside CER and SIM ('' for none)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (loopback by default; 0.0.0.0 serves the network: there is no login)")
    ap.add_argument("--port", type=int, default=7860, help="port to serve on")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with one_line_errors("f5rl.app"):
        try:
            import gradio  # noqa: F401
        except ImportError as e:
            raise ImportError("the page needs Gradio: pip install 'f5rl[app]' (or make app)") from e
        from f5rl.app.backend import ModelSpec, Studio, held_out_prompts, shipped_base

        models = [shipped_base()] + [ModelSpec.parse(m) for m in args.model]
        corpus = args.corpus or ("data/demo_char" if Path("data/demo_char/test_eval.jsonl").is_file() else None)
        held_out_prompts(corpus)  # a bad --corpus fails here, before the page starts
        if args.prompt and not Path(args.prompt).is_file():
            raise FileNotFoundError(f"--prompt {args.prompt} does not exist")
        if not 4 <= args.nfe <= 64:
            raise ValueError(f"--nfe {args.nfe}: use 4 to 64 steps")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no calls home
    from f5rl.app.ui import build

    studio = Studio(models, mos=args.mos or None)
    page = build(studio, corpus, args.prompt, args.prompt_text, args.text, args.nfe)
    # the held-out prompts are files the page hands to the browser: Gradio serves only folders it is told of
    allowed = [str(Path(p).resolve().parent) for p in [args.prompt] if p] + ([str(Path(corpus).resolve())]
                                                                            if corpus else [])
    page.queue().launch(server_name=args.host, server_port=args.port, show_error=False, quiet=False,
                        allowed_paths=allowed)


if __name__ == "__main__":
    main()
