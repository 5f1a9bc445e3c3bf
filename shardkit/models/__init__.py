"""Models: audio encoders, prompt placement, the audio splice and the audio-LLM families."""
