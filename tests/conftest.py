"""Shared fixtures: tiny models and speech-like test signals (CPU, deterministic)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from f5rl.model import CFM, CFMConfig, DiT, DiTConfig
from tests.train.plain_grpo import PLAIN_GRPO

REF_DIR = Path(__file__).resolve().parent / "fixtures" / "reference"
DEFAULT_SLOW_SECONDS = 30  # a slow test without a measured `seconds`


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs two workers) each worker gets its share of the cores, and so do
    the processes it starts (OMP_NUM_THREADS is inherited): two workers of 2 threads on 2 cores would
    oversubscribe them and spin-wait in each other's way."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)


@pytest.hookimpl(trylast=True)  # after `-m` deselects: the order is of the tests that run
def pytest_collection_modifyitems(config, items):
    """Longest test modules first, by the seconds measured on the dev machine (`slow(seconds=N)`): with
    `--dist loadscope` a module runs on one worker, so starting the longest one first keeps the workers'
    finishing times close (longest-processing-time-first). Order within a module is kept.

    Under N workers the N cheapest modules of at least two tests come right after the N longest: xdist's
    loadscope scheduler gives each worker one module, then one more whenever a test ends on a worker with at
    most two tests pending (and once at the start), and such a module waits behind the first on its worker.
    The longest module has two tests, the long one last: with two more pending behind it, nothing else is
    queued there while it runs."""
    cost: dict[Path, float] = {}
    tests: dict[Path, int] = {}
    for item in items:
        mark = item.get_closest_marker("slow")
        cost[item.path] = cost.get(item.path, 0.0) + (mark.kwargs.get("seconds", DEFAULT_SLOW_SECONDS) if mark else 1)
        tests[item.path] = tests.get(item.path, 0) + 1
    modules = sorted(cost, key=lambda path: -cost[path])  # stable: ties keep the collection order
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if workers and len(modules) > 2 * workers:
        rest = modules[workers:]
        cheapest = sorted((m for m in rest if tests[m] >= 2), key=lambda path: cost[path])[:workers]
        modules = modules[:workers] + cheapest + [m for m in rest if m not in cheapest]
    rank = {path: i for i, path in enumerate(modules)}
    items.sort(key=lambda item: rank[item.path])


@pytest.fixture(autouse=True)
def _error_settings_kept():
    """A test must not change how later commands report errors: importing funasr (a test helper, an
    ``importorskip``) sets ``HYDRA_FULL_ERROR=1``, which turns one-line errors into tracebacks in the tests that
    follow on that worker and in the processes they start."""
    before = {k: os.environ.get(k) for k in ("HYDRA_FULL_ERROR", "F5RL_DEBUG")}
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def free_port() -> int:
    """A loopback port nothing listens on now (tests on two workers must not share a fixed port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_launch(script: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """``accelerate launch --multi_gpu --num_processes 2`` (gloo, CPU) of ``script``, on a free port."""
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    return subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--main_process_port", str(free_port()), "--mixed_precision", "no", "--dynamo_backend",
                           "no", str(script), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def speech_like(seconds: float = 1.5, sr: int = 24000, seed: int = 0) -> np.ndarray:
    """A voiced, vowel-like signal: gliding f0 with 30 harmonics shaped by moving formants,
    syllable-rate amplitude modulation and a little breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110 + 25 * np.sin(2 * np.pi * 1.3 * t) + 10 * rng.standard_normal() * t
    phase = 2 * np.pi * np.cumsum(f0) / sr
    f1 = 500 + 200 * np.sin(2 * np.pi * 2.1 * t)
    f2 = 1500 + 500 * np.sin(2 * np.pi * 1.7 * t + 1)
    y = np.zeros_like(t)
    for k in range(1, 31):
        fk = k * f0
        amp = np.exp(-((fk - f1) / 150) ** 2) + 0.5 * np.exp(-((fk - f2) / 250) ** 2) + 0.02
        y += amp * np.sin(k * phase) / k**0.5
    env = (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t)) ** 2
    y = y * env + 0.01 * rng.standard_normal(t.shape)
    return (0.6 * y / np.abs(y).max()).astype(np.float32)


def tiny_config(**overrides) -> DiTConfig:
    kw = dict(dim=64, depth=2, heads=4, dim_head=16, text_dim=32, conv_layers=1, text_num_embeds=30,
              dropout=0.0)
    kw.update(overrides)
    return DiTConfig(**kw)


def randomise_grn(net: torch.nn.Module, seed: int = 5) -> None:
    """Give every GRN of ``net`` random weights, as training would: GRN is the identity at init
    (gamma = beta = 0), which hides what its time-axis norm reads."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".grn." in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


@pytest.fixture
def tiny_dit() -> DiT:
    torch.manual_seed(0)
    return DiT(tiny_config(use_rl_head=True))


@pytest.fixture
def tiny_cfm(tiny_dit) -> CFM:
    return CFM(tiny_dit, CFMConfig(objective="gaussian_nll"))


def reference_keys(name: str) -> dict[str, tuple[int, ...]]:
    """Key → shape from a ``shared/reference`` TSV."""
    out = {}
    for line in (REF_DIR / name).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, shape = line.split("\t")
        out[key] = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
    return out


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory):
    """A small synthetic demo corpus (4 speakers, 28 sentences) built once per session."""
    from f5rl.data.prepare_demo import build

    out = tmp_path_factory.mktemp("data") / "demo_char"
    build(out, sentences=28, test_fraction=0.15, seed=7, speakers=["joe", "ava", "max", "ivy"],
          report_similarity=False)
    return out


@pytest.fixture(scope="session")
def standard_demo_corpus(tmp_path_factory):
    """The corpus ``make demo`` builds (seed 1234, 1200 sentences, six voices): the held-out sentences
    the shipped demo base model never trained on. About a minute; used by slow tests only."""
    from f5rl.data.prepare_demo import build

    out = tmp_path_factory.mktemp("standard") / "demo_char"
    build(out, sentences=1200, report_similarity=False)
    return out


def tiny_train_config(save_dir, data_dir, *overrides: str):
    """The tiny demo config shrunk further for unit tests (fp32, no logger, no samples)."""
    from f5rl.config import compose, validate
    from f5rl.config.schema import TrainConfig

    base = [
        f"ckpts.save_dir={save_dir}", f"datasets.path={data_dir}", "ckpts.logger=null", "ckpts.log_samples=false",
        "model.arch.dim=64", "model.arch.depth=2", "model.arch.heads=2", "model.arch.dim_head=32",
        "model.arch.text_dim=32", "model.arch.conv_layers=1", "optim.mixed_precision=no",
        "datasets.batch_size_type=sample", "datasets.batch_size_per_gpu=4", "optim.num_warmup_updates=2",
        "optim.learning_rate=1e-3",
    ]
    return validate(compose("F5TTS_tiny_demo", base + list(overrides)), TrainConfig)


def tiny_rl_config(save_dir, data_dir, *overrides: str):
    """Stage-2 tiny config on the demo corpus with a deterministic mel reward (no model downloads)."""
    from f5rl.config import compose, validate
    from f5rl.config.schema import RLTrainConfig

    base = [
        f"ckpts.save_dir={save_dir}", f"datasets.path={data_dir}", "ckpts.logger=null", "ckpts.log_samples=false",
        "model.arch.dim=64", "model.arch.depth=2", "model.arch.heads=2", "model.arch.dim_head=32",
        "model.arch.text_dim=32", "model.arch.conv_layers=1", "optim.mixed_precision=no", "rl.steps=6",
        "rl.group_size=4", "datasets.batch_size_per_gpu=2", "model.vocoder.griffin_lim_iters=2",
        "rl.rewards.providers=[{name: mel_energy, weight: 1.0, config: {target: -2.0}}]", *PLAIN_GRPO,
    ]
    return validate(compose("F5TTS_RL_tiny", base + list(overrides)), RLTrainConfig)


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory, demo_corpus):
    """A tiny stage-0 checkpoint with its config.yaml (a few updates), built once per session."""
    from f5rl.train.trainer import Trainer

    run = tmp_path_factory.mktemp("ckpt") / "run"
    t = Trainer(tiny_train_config(run, demo_corpus, "optim.max_updates=4"))
    t.setup()
    t.train()
    return run / "model_last.pt"
