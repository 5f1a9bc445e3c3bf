"""Frozen and trainable audio encoders that turn a 16 kHz waveform into audio tokens."""
