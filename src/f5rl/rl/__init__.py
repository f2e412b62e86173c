"""Pure loss functions of tensors (no modules, no trainers)."""
