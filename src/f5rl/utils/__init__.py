"""Small shared helpers (precision, atomic file writes)."""
