"""Training: stage 0/1 (``train``), stage 2 (``train_rl``), offline preference optimisation."""
