"""Tuning an audio-LLM on interleaved instructions: the instruction data, LoRA and the training loop."""
