"""Flow-matching DPO/IPO/RPO trainer (DESIGN §9 step 4): orchestration only.

Each micro-batch holds preference pairs; chosen and rejected share the noise x0, the time t and
the infill span (the generated frames after the context prompt), their per-sample
flow-matching errors are computed for the policy and the frozen reference, and
``f5rl.rl.dpo.preference_loss`` turns them into the loss. Optional regularisers: the CFM loss on
the chosen samples (``dpo.sft_loss_weight``), the CFM loss on real utterances of the training
corpus (``dpo.anchor_loss_weight``) and the policy's velocity drift from the reference's at later flow times
(``dpo.drift_time_range``, ``dpo.drift_weight``). Checkpoints, resume, EMA and logging are those of stage 0/1.
"""

from __future__ import annotations

import logging

import torch

from f5rl.config.schema import DPOTrainConfig
from f5rl.data.collate import pad_frames
from f5rl.data.pairs import PairBatch, PairCollate, PairDataset, PairItem
from f5rl.model.cfm import LossOutput
from f5rl.model.sampling import lens_to_mask
from f5rl.rl.dpo import preference_loss, preference_times
from f5rl.rollout import evaluate
from f5rl.train.trainer import Trainer

log = logging.getLogger(__name__)


class DPOTrainer(Trainer):
    cfg: DPOTrainConfig
    explicit_grad_sync = True  # the losses call the networks directly, not through DDP
    dropout_in_training = False  # policy and reference errors come from the same (dropout-free) function
    progress_label = "dpo"
    trains_text_rows = False  # pairs were synthesised from text read with the fallback: read it the same way

    def build_dataset(self, data_dir):
        return PairDataset(self.cfg.dpo.train_manifest, self.mel_config), PairCollate(self.tokenizer)

    def run_kind(self) -> dict[str, str]:
        return {"trainer": "dpo", "objective": self.cfg.dpo.loss_type}

    def setup(self) -> None:
        super().setup()
        self._setup_anchor()
        self.ref = self.build_reference(self.cfg.dpo.ref_model_ckpt)
        self.ref_cfm = None
        self.val_items, self._val_ref = None, None  # _val_ref: (seed, the reference's held-out errors)
        if self.cfg.dpo.val_manifest:
            ds = PairDataset(self.cfg.dpo.val_manifest, self.mel_config)
            self.val_items = [ds[i] for i in range(len(ds))]
        if self.cfg.model.arch.dropout > 0:
            log.warning("DPO evaluates policy and reference without dropout (model.arch.dropout=%g is not used): "
                        "with dropout the policy's errors would differ from the reference's before any update",
                        self.cfg.model.arch.dropout)

    def periodic_validation(self, update: int) -> dict[str, float]:
        """``dpo.val_every``: held-out implicit accuracy and loss between training steps."""
        out = super().periodic_validation(update)
        d = self.cfg.dpo
        if d.val_every > 0 and update % d.val_every == 0 and self.accelerator.is_main_process:
            out.update(self.validate())
        return out

    def _setup_anchor(self) -> None:
        """Real utterances for the anchor term, batched by a sampler of their own that is
        deterministic per epoch, so a resumed run draws the same batches."""
        self.anchor_loader, self._anchor_batches = None, None
        d = self.cfg.dpo
        if d.anchor_loss_weight <= 0:
            return
        from torch.utils.data import DataLoader

        from f5rl.data.dataset import resolve_dataset_dir
        from f5rl.data.sampler import DynamicBatchSampler

        data_dir = resolve_dataset_dir(self.cfg.datasets, self.cfg.model)
        ds, collate = Trainer.build_dataset(self, data_dir)
        replicas, rank = self.data_shard()
        self.anchor_sampler = DynamicBatchSampler(ds.frame_lens, d.anchor_batch_size, "sample",
                                                  self.cfg.datasets.max_samples, seed=self.cfg.optim.seed + 1,
                                                  num_replicas=replicas, rank=rank)
        self.anchor_loader = DataLoader(ds, batch_sampler=self.anchor_sampler, collate_fn=collate,
                                        num_workers=self.cfg.datasets.num_workers, generator=torch.Generator())

    def _anchor_stream(self, micro: int):
        """Real batches from micro-batch ``micro`` on, epoch after epoch."""
        n = len(self.anchor_sampler)
        while True:
            epoch, skip = divmod(micro, n)
            self.anchor_sampler.set_epoch(epoch, skip)
            for batch in self.anchor_loader:
                micro += 1
                yield batch

    def on_train_start(self) -> None:
        if self.anchor_loader is not None:
            self._anchor_batches = self._anchor_stream(self.start_update * self.cfg.optim.grad_accumulation_steps)

    def times(self, u: torch.Tensor) -> torch.Tensor:
        """Flow times for u ~ U(0, 1): ``dpo.time_range`` and ``dpo.time_sway`` (f5rl.rl.dpo)."""
        return preference_times(u, self.cfg.dpo.time_range, self.cfg.dpo.time_sway)

    @staticmethod
    def pair_masks(batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The frames of each pair ``(b, n)`` and its span (those after the context prompt), as bool masks."""
        n = batch.mel.shape[1]
        mask = lens_to_mask(batch.mel_lengths, n)
        return mask, mask & ~lens_to_mask(batch.prompt_lens, n)

    def pair_errors(self, batch: PairBatch, network, draws=None):
        """Flow errors of chosen and rejected under one network, with shared draws."""
        b = batch.mel.shape[0]
        mask, span = self.pair_masks(batch)
        if draws is None:
            t = self.times(torch.rand(b, device=batch.mel.device))
            draws = (torch.randn_like(batch.mel), t)
        x0, t = draws
        e_w = evaluate.flow_errors(network, batch.mel, x0, t, batch.text, mask, span)
        e_l = evaluate.flow_errors(network, batch.rejected, x0, t, batch.text, mask, span)
        return e_w, e_l, draws

    def compute_loss(self, batch: PairBatch) -> LossOutput:
        d = self.cfg.dpo
        policy = self.accelerator.unwrap_model(self.model).transformer
        e_w, e_l, draws = self.pair_errors(batch, policy)
        with torch.no_grad():
            r_w, r_l, _ = self.pair_errors(batch, self.ref, draws)
        out = preference_loss(e_w, e_l, r_w, r_l, d.beta, d.loss_type, d.label_smoothing, batch.reward_gap, d.rpo_eta)
        loss = out.loss
        metrics = {"loss/preference": out.loss.detach(), **out.metrics, "dpo/chosen_error": e_w.mean().detach(),
                   "dpo/rejected_error": e_l.mean().detach()}
        if d.sft_loss_weight > 0:
            loss = loss + d.sft_loss_weight * e_w.mean()
        if d.drift_weight > 0:
            drift = self.chosen_drift(batch, policy)
            loss = loss + d.drift_weight * drift
            metrics["loss/drift"] = drift.detach()
        if self._anchor_batches is not None:
            real = next(self._anchor_batches).to(self.device)
            anchor = self.accelerator.unwrap_model(self.model)(real.mel, real.text, real.mel_lengths).loss
            loss = loss + d.anchor_loss_weight * anchor
            metrics["loss/anchor"] = anchor.detach()
        return LossOutput(loss, metrics)

    def chosen_drift(self, batch: PairBatch, policy) -> torch.Tensor:
        """Mean squared distance of the policy's velocity on the chosen samples from the reference's, at flow
        times uniform in ``dpo.drift_time_range`` with noise of their own (``dpo.drift_weight``'s term)."""
        mask, span = self.pair_masks(batch)
        t = preference_times(torch.rand(batch.mel.shape[0], device=batch.mel.device), self.cfg.dpo.drift_time_range)
        x0 = torch.randn_like(batch.mel)
        v = evaluate.flow_velocity(policy, batch.mel, x0, t, batch.text, mask, span)
        return evaluate.reference_drift(v, self.ref, batch.mel, x0, t, batch.text, mask, span).mean()

    @torch.no_grad()
    def validate(self, seed: int = 0) -> dict[str, float]:
        """Implicit accuracy and margin on the held-out pairs, with fixed draws.

        One (noise, t) draw per pair makes the implicit reward of a handful of pairs mostly noise;
        the errors are averaged over ``dpo.val_draws`` draws, stratified over the training times
        (``u`` stratified over [0, 1], then mapped as in training), so the held-out implicit reward
        is the one training optimises."""
        if self.val_items is None:
            return {}
        # the reference is frozen: its errors under the fixed draws are computed once
        if self._val_ref is None or self._val_ref[0] != seed:
            self._val_ref = (seed, self._held_out_errors(self.val_items, self.ref, seed))
        return self._pair_metrics(self.val_items, seed, self._val_ref[1], "val")

    @torch.no_grad()
    def fit(self, limit: int = 64, seed: int = 0) -> dict[str, float]:
        """How well the policy fits its own training pairs (the first ``limit``): implicit accuracy
        and margin as in ``validate``, logged as ``fit/*``. DPO optimises exactly this, so it is the
        direct check that training moved the policy toward the chosen samples (held-out pairs of a
        small round measure generalisation, which varies from round to round)."""
        ds = self.dataset
        items = [ds[i] for i in range(min(limit, len(ds)))]
        return self._pair_metrics(items, seed, self._held_out_errors(items, self.ref, seed), "fit")

    def _pair_metrics(self, items: list[PairItem], seed: int, ref: tuple[torch.Tensor, torch.Tensor],
                      prefix: str) -> dict[str, float]:
        """``preference_loss`` of the policy against the reference's errors ``ref`` on ``items``."""
        policy = self.accelerator.unwrap_model(self.model).transformer
        was = policy.training
        policy.eval()
        ref_w, ref_l = ref
        # before any update the policy is the reference (same errors, exactly)
        e_w, e_l = (ref_w, ref_l) if _same_weights(policy, self.ref) else self._held_out_errors(items, policy, seed)
        policy.train(was)
        d = self.cfg.dpo
        gap = torch.tensor([it.reward_gap for it in items], device=e_w.device)
        out = preference_loss(e_w, e_l, ref_w, ref_l, d.beta, d.loss_type, d.label_smoothing, gap, d.rpo_eta)
        return {f"{prefix}/loss": float(out.loss), **{f"{prefix}/{k}": float(v) for k, v in out.metrics.items()}}

    @torch.no_grad()
    def _held_out_errors(self, items: list[PairItem], network, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Chosen and rejected errors ``(b,)`` of ``items`` under ``network``, averaged over the fixed,
        stratified draws of ``seed``. The pairs go through in chunks of ``dpo.val_batch_size``, shortest
        first, each chunk padded to its own longest pair; pair ``j`` draws its (noise, t) from a generator
        of its own, so the numbers do not depend on the chunking."""
        k, n, size = self.cfg.dpo.val_draws, len(items), self.cfg.dpo.val_batch_size
        sums = torch.zeros(2, n, device=self.device)
        order = sorted(range(n), key=lambda j: items[j].chosen.shape[0])
        collate = PairCollate(self.tokenizer)
        for start in range(0, n, size):
            chunk = order[start:start + size]
            batch = collate([items[j] for j in chunk]).to(self.device)
            gens = [torch.Generator().manual_seed(seed * 1_000_003 + j) for j in chunk]
            for i in range(k):
                # draw i covers u in [i/k, (i+1)/k) (stratified); the noise of a pair's own frames
                u = torch.cat([(i + torch.rand(1, generator=g)) / k for g in gens])
                x0 = pad_frames([torch.randn(items[j].chosen.shape, generator=g) for j, g in zip(chunk, gens)])[0]
                draws = (x0.to(self.device), self.times(u).to(self.device))
                with self.accelerator.autocast():  # the training precision
                    e_w, e_l, _ = self.pair_errors(batch, network, draws)
                sums[0, chunk] += e_w.float() / k
                sums[1, chunk] += e_l.float() / k
        return sums[0], sums[1]


def _same_weights(a: torch.nn.Module, b) -> bool:
    if not isinstance(b, torch.nn.Module):  # a LoRA base view: compute its errors
        return False
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
