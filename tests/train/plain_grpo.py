"""Stage-2 unit tests pin plain GRPO with inline rewards, the settings each test was written for;
``F5TTS_RL_tiny``'s defaults are the measured AWM recipe (README, "GRPO on the demo base"), which a
test asks for by name (``rl.loss=awm`` ...). Imported by conftest and by the ``accelerate launch`` scripts
beside this file."""

PLAIN_GRPO = ["rl.loss=grpo", "rl.inner_epochs=1", "rl.awm_time_range=[0.0,1.0]", "rl.awm_negative_weight=1.0",
              "rl.rewards.mode=sum", "rl.rewards.process=inline", "optim.learning_rate=2e-5"]
