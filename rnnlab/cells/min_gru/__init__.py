"""minGRU (Feng et al. 2024): a GRU whose gate and candidate see only the input."""
