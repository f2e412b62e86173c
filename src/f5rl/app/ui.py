"""The Gradio page: a "Compare" tab (one text, one prompt, up to four checkpoints side by side, same
seeds, scored) and a "Browse" tab (an ``evaluate`` output, a ``prefs`` round or a run's folder, its
rows sorted by any metric, pairs as chosen against rejected, and its plots). Problems with what the
user gave are shown in the page's status line, never as a traceback."""


import logging
import math
import tempfile
from pathlib import Path

from f5rl.app.backend import (
    MAX_MODELS,
    InputProblem,
    ModelSpec,
    Studio,
    held_out_prompts,
    mel_png,
    open_folder,
    read_prompt,
    to_numpy,
)

CONFIGS = ["F5TTS_v1_Base", "F5TTS_Base", "F5TTS_v1_Small"]
log = logging.getLogger(__name__)


def _fmt(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def score_markdown(s) -> str:
    lines = [f"**{s.model}** · seed {s.seed} · {s.seconds:.2f} s"
             + (f" · best of {s.candidates}" if s.candidates > 1 else ""),
             "", "| CER | WER | SIM | DNSMOS | reward |", "|---|---|---|---|---|",
             f"| {_fmt(s.scores.get('cer'))} | {_fmt(s.scores.get('wer'))} | {_fmt(s.scores.get('sim'))} "
             f"| {_fmt(s.scores.get('dnsmos'))} | {_fmt(s.scores.get('reward'))} |",
             "", f"heard: *{s.transcript or '(nothing)'}*"]
    return "\n".join(lines)


def build(studio: Studio, corpus: str | None = None, prompt: str | None = None, prompt_text: str = "",
          text: str = "", nfe: int = 32):
    """The page (a ``gr.Blocks``) over ``studio``; ``corpus``: a demo corpus whose held-out utterances
    are offered as prompts; ``prompt``/``prompt_text``/``text``: what the form starts with."""
    import gradio as gr

    prompts = held_out_prompts(corpus)
    work = Path(tempfile.mkdtemp(prefix="f5rl-app-"))

    with gr.Blocks(title="f5rl: listen and compare") as page:
        gr.Markdown("# f5rl: listen and compare\nSynthesise one text with up to four checkpoints from the same "
                    "prompt and seeds, scored by Whisper (CER, WER), speaker similarity and DNSMOS.")
        with gr.Tab("Compare"):
            with gr.Row():
                with gr.Column(scale=2):
                    models = gr.CheckboxGroup(list(studio.models), value=list(studio.models)[:1],
                                              label=f"checkpoints (up to {MAX_MODELS})", elem_id="models")
                    with gr.Accordion("add a checkpoint", open=False):
                        new_path = gr.Textbox(label="path of a .pt or .safetensors file", elem_id="new_model")
                        new_cfg = gr.Dropdown([""] + CONFIGS, value="", label="model config (released F5 weights "
                                              "without a config.yaml beside them)")
                        new_vocab = gr.Textbox(label="vocab.txt (released F5 weights)")
                        add_btn = gr.Button("add")
                    held = gr.Dropdown([""] + list(prompts), value="", label="prompt: a held-out utterance",
                                       visible=bool(prompts))
                    ref = gr.Audio(value=prompt, sources=["upload", "microphone"], type="filepath",
                                   label="prompt: upload or record 2-10 s of speech", elem_id="prompt")
                    ref_text = gr.Textbox(value=prompt_text, label="what the prompt says", elem_id="prompt_text")
                with gr.Column(scale=3):
                    gen_text = gr.Textbox(value=text, label="text to say", lines=3, elem_id="text")
                    with gr.Row():
                        seed = gr.Number(value=0, precision=0, label="seed")
                        steps = gr.Slider(4, 64, value=nfe, step=1, label="NFE (Euler steps)")
                        n_best = gr.Slider(2, 16, value=4, step=1, label="N of best-of-N")
                    with gr.Row():
                        go = gr.Button("Synthesise", variant="primary", elem_id="synthesise")
                        go_best = gr.Button("Best of N", elem_id="best_of_n")
                    status = gr.Markdown("", elem_id="status")
            slots = []
            with gr.Row():
                for i in range(MAX_MODELS):
                    with gr.Column(visible=False, min_width=240) as col:
                        audio = gr.Audio(label=f"sample {i + 1}", type="numpy", interactive=False,
                                         elem_id=f"out_audio_{i}")
                        scores = gr.Markdown(elem_id=f"out_scores_{i}")
                        mel = gr.Image(label="mel spectrogram", type="filepath", interactive=False)
                    slots.append((col, audio, scores, mel))

        def synthesise(names, ref_path, ref_txt, txt, sd, nfe_, n, progress=gr.Progress()):  # noqa: B008 (Gradio API)
            hidden = [u for _ in slots for u in (gr.Column(visible=False), None, "", None)]
            try:
                p = read_prompt(ref_path, ref_txt, studio.max_prompt_seconds)
                results = studio.compare(list(names or []), p, txt or "", int(sd or 0), int(nfe_), int(n),
                                         progress=lambda f, d: progress(f, desc=d))
            except InputProblem as e:
                return [f"Problem: {e}", *hidden]
            except Exception as e:  # e.g. a checkpoint that does not load: a message here, the traceback in the log
                log.exception("synthesis failed")
                return [f"Problem: synthesis failed ({type(e).__name__}: {e}); the server's log has the details",
                        *hidden]
            out = []
            for i in range(len(slots)):
                if i < len(results):
                    r = results[i]
                    png = mel_png(r.mel, work / f"mel_{i}_{r.seed}.png", r.model)
                    out += [gr.Column(visible=True), to_numpy(r.audio), score_markdown(r), str(png)]
                else:
                    out += [gr.Column(visible=False), None, "", None]
            return [f"Done: {len(results)} sample(s), {results[0].candidates} candidate(s) each", *out]

        outputs = [status] + [c for slot in slots for c in slot]
        inputs = [models, ref, ref_text, gen_text, seed, steps]
        def synthesise_one(names, ref_path, ref_txt, txt, sd, nfe_, progress=gr.Progress()):  # noqa: B008
            return synthesise(names, ref_path, ref_txt, txt, sd, nfe_, 1, progress=progress)

        go.click(synthesise_one, inputs, outputs)
        go_best.click(synthesise, inputs + [n_best], outputs)

        def add_model(path, cfg, vocab, chosen):
            try:
                spec = ModelSpec.parse(",".join([path or ""] + ([f"model_cfg={cfg}"] if cfg else [])
                                                + ([f"vocab={vocab}"] if vocab else [])))
            except InputProblem as e:
                return gr.CheckboxGroup(), f"Problem: {e}"
            name = studio.add(spec)
            return gr.CheckboxGroup(list(studio.models), value=[*(chosen or []), name][-MAX_MODELS:]), \
                f"Added {name}"

        add_btn.click(add_model, [new_path, new_cfg, new_vocab, models], [models, status])
        held.change(lambda k: (str(prompts[k][0]), prompts[k][1]) if k else (gr.Audio(), gr.Textbox()),
                    [held], [ref, ref_text])

        with gr.Tab("Browse"):
            with gr.Row():
                folder = gr.Textbox(label="folder: an evaluate --out_dir, a prefs round (or its work dir) or a "
                                    "run's save dir", scale=4, elem_id="folder")
                open_btn = gr.Button("open", scale=1, elem_id="open_folder")
            browse_status = gr.Markdown(elem_id="browse_status")
            with gr.Row():
                table_name = gr.Dropdown([], label="table")
                metric = gr.Dropdown([], label="sort by")
                descending = gr.Checkbox(False, label="descending")
            grid = gr.Dataframe(interactive=False, wrap=True, elem_id="rows")
            with gr.Row():
                play_a = gr.Audio(label="sample (chosen)", interactive=False, elem_id="play_a")
                play_b = gr.Audio(label="rejected", interactive=False, visible=False, elem_id="play_b")
            plots = gr.Gallery(label="plots", columns=3, height="auto")
        state = gr.State(None)

        def show(f, name, m, desc):
            """The chosen table sorted by the chosen metric: (table, metric dropdown, grid value)."""
            if f is None or name not in f.tables:
                return None, gr.Dropdown(), None
            t = f.tables[name]
            m = m if m in t.metrics else (t.metrics[0] if t.metrics else None)
            t = t.sorted(m, bool(desc)) if m else t
            cells = [[round(v, 4) if isinstance(v, float) else v for v in r.values()] for r in t.rows]
            data = {"headers": list(t.rows[0]), "data": cells} if t.rows else None
            return t, gr.Dropdown(t.metrics, value=m), data

        def do_open(path):
            # the players are emptied too: a clip of the previous folder must not pass for one of this folder
            cleared = (None, gr.Audio(value=None, visible=False))
            try:
                f = open_folder(path or "")
            except InputProblem as e:
                return None, None, f"Problem: {e}", gr.Dropdown([]), gr.Dropdown([]), None, [], *cleared
            names = list(f.tables)
            t, mdrop, data = show(f, names[0], None, False) if names else (None, gr.Dropdown([]), None)
            msg = f"Opened: {f.kind} folder: {len(names)} table(s), {len(f.pngs)} plot(s)"
            return f, t, msg, gr.Dropdown(names, value=names[0] if names else None), mdrop, data, \
                [_image(p) for p in f.pngs], *cleared

        shown = gr.State(None)
        open_btn.click(do_open, [folder], [state, shown, browse_status, table_name, metric, grid, plots, play_a,
                                            play_b])
        for trigger in (table_name, metric, descending):
            trigger.input(show, [state, table_name, metric, descending], [shown, metric, grid])

        # (this module has no `from __future__ import annotations`: Gradio finds the row from the live
        # `gr.SelectData` annotation, which a string annotation would hide)
        def play(t, evt: gr.SelectData):
            if t is None:
                return None, gr.Audio(visible=False)
            # clips are sent as samples, not paths: the folder may lie outside what Gradio serves
            clips = t.audio[evt.index[0]]
            if "chosen" in clips:
                return _clip(clips["chosen"]), gr.Audio(value=_clip(clips["rejected"]), visible=True)
            return _clip(clips["audio"]), gr.Audio(visible=False)

        grid.select(play, [shown], [play_a, play_b])
    return page


def _clip(path: Path):
    from f5rl.audio.io import load_audio

    return to_numpy(load_audio(path))


def _image(path: Path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")
