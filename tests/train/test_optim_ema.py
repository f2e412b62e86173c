import pytest
import torch

from f5rl.train.ema import EMA
from f5rl.train.optim import lr_factor


def test_lr_schedule_by_hand():
    assert lr_factor(0, 10, 110) == pytest.approx(1e-8)
    assert lr_factor(5, 10, 110) == pytest.approx(0.5, rel=1e-6)
    assert lr_factor(10, 10, 110) == pytest.approx(1.0)
    assert lr_factor(60, 10, 110) == pytest.approx(0.5, rel=1e-6)
    assert lr_factor(110, 10, 110) == pytest.approx(1e-8)
    assert lr_factor(0, 0, 4) == pytest.approx(1.0)


def test_ema_copies_then_averages():
    model = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(model, beta=0.5, update_after_step=2, update_every=1)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # step 1 <= 2: copy
    assert ema.ema_model.weight.item() == 1.0
    ema.update(model)  # step 2: copy
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model)  # step 3: k = 0 -> decay 0 -> copy 3
    assert ema.ema_model.weight.item() == pytest.approx(3.0)
    with torch.no_grad():
        model.weight.fill_(5.0)
    ema.update(model)  # step 4: k = 1, decay = min(0.5, 1 - 2^(-2/3)) = 0.370
    d = 1 - 2 ** (-2 / 3)
    assert ema.ema_model.weight.item() == pytest.approx(d * 3 + (1 - d) * 5)
    keys = set(ema.state_dict())
    assert {"initted", "step", "ema_model.weight"} == keys
