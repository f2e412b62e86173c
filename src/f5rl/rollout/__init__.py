"""Stochastic rollouts that record what the stage-2 losses need."""
