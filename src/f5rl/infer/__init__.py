"""Inference: synthesis from checkpoints and best-of-N reranking."""
