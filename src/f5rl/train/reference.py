"""The frozen reference network of stage 2 and DPO."""

from __future__ import annotations

import copy
import logging

from f5rl.model.checkpoint import dit_state_from, load_dit_state, read_weights_file

log = logging.getLogger(__name__)


def build_reference(policy, source: str | None, lora: bool, initial_weights: str | None, resuming: bool, device):
    """``source`` (its EMA weights), else the initial policy. When resuming, the policy has moved,
    so the initial weights are read again from ``initial_weights`` (``init_from``/``pretrained_*``).
    With LoRA and no ``source``: the policy itself with its adapters disabled and a frozen copy of the
    layers trained in full (:class:`f5rl.model.lora.BaseModelView`), no second network in memory."""
    from f5rl.model.dit import DiT

    if lora and source is None:
        from f5rl.model.lora import BaseModelView

        log.info("reference model: the policy with its LoRA adapters disabled (no second copy)")
        view = BaseModelView(policy)
        if resuming:  # the layers trained in full have moved: their initial values come from the start file
            if initial_weights is None:
                raise ValueError("resuming a LoRA run whose initial weights are gone: set rl.ref_model_ckpt / "
                                 "dpo.ref_model_ckpt, or keep the pretrained_* file in the save dir")
            start = dit_state_from(read_weights_file(initial_weights), use_ema=True)
            for name in view.frozen:
                if name in start:
                    view.frozen[name] = start[name].to(view.frozen[name])
        return view
    ref = DiT(policy.config) if lora else copy.deepcopy(policy)
    ref.to(device)
    if source is None and resuming:
        if initial_weights is None:
            raise ValueError("resuming without a reference checkpoint, and the initial weights are gone: "
                             "set the reference checkpoint (rl.ref_model_ckpt / dpo.ref_model_ckpt)")
        source = str(initial_weights)
    if source is not None:
        load_dit_state(ref, dit_state_from(read_weights_file(source), use_ema=True))
        log.info("reference model: %s (EMA weights)", source)
    else:
        log.info("reference model: frozen copy of the initial policy")
    return ref.eval().requires_grad_(False)
