"""Offline preference optimisation: text/context pairs, generation with metrics, pairs, DPO."""
