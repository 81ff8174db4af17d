"""minLSTM (Feng et al. 2024): an LSTM whose gates see only the input, normalised to sum to one."""
