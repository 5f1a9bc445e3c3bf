"""Audio stage: loading and validating waveforms, and caching per-clip encoder features."""
