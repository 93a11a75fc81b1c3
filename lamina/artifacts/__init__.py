"""What a run leaves behind: its folder, checkpoints (safetensors + JSON), the callbacks that record it, plots."""
