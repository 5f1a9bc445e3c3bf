"""shardkit: does an audio-LLM's reasoning reach the audio it is given?

SHARD (Synonym and Hypernym Audio Reasoning Dataset), audio placement inside the prompt, and the tools to
build, run, tune and report on it. Data flows one way: resources → benchmark → audio → models → eval/train → study.
"""

__version__ = "0.1.0"
