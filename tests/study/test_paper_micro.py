"""The ltu-paper preset end to end at micro scale: a tiny random LTU saved in LTU's own checkpoint layout (CAV-MAE
names, `audio_proj`, LoRA keys as LTU writes them) on a tiny Vicuna-shaped folder, every stage of the preset with its
sizes overridden — merge=1, both tunings on top of it, generate scoring, every ablation kind — and its report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from shardkit.models.encoders.cavmae import CavMaeConfig
from shardkit.models.ltu import LtuConfig
from tests.models.test_ltu import HIDDEN, LAYERS, ltu_state
from tests.models.tiny import llama, tokenizer

ROOT = Path(__file__).resolve().parents[2]
MICRO = """base: ltu-paper
name: ltu-paper-micro
model: ltu:ckpt={ckpt},llm={llm},merge=1
device: cpu
dtype: float32
eval: {{limit: 2, n_boot: 50, max_new_tokens: 4}}
tuning: {{small: 8, large: 16, train: {{batch_size: 4, grad_accum: 1, warmup_steps: 1, dtype: float32,
                                     save_every: 0, ewc_samples: 16}}}}
ablations: {{position: [start], replay: [0.0], lora_rank: [4], control: [original], audio_control: [original],
            attention: [original], interpolate: [0.5], ewc: [10.0], intruders: [0.5]}}
"""


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    root = tmp_path_factory.mktemp("ltu-paper")
    tok = tokenizer()
    llama(len(tok), hidden=HIDDEN, layers=LAYERS).save_pretrained(root / "vicuna")
    tok.save_pretrained(root / "vicuna")
    small = LtuConfig(encoder=CavMaeConfig(dim=64, depth_a=1, depth_u=1, heads=1))  # full 1024 × 128 fbank input
    torch.save(ltu_state(small), root / "ltu.bin")
    (root / "micro.yaml").write_text(MICRO.format(ckpt=root / "ltu.bin", llm=root / "vicuna"))
    r = subprocess.run([sys.executable, "-m", "shardkit", "study", "--preset", str(root / "micro.yaml"), "--out",
                        str(root / "run")], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return root / "run", json.loads((root / "run" / "study.json").read_text())


def test_every_stage_of_the_paper_preset_runs_and_reports(paper):
    out, result = paper
    names = [r["name"] for r in result["rows"]]
    for name in ("original", "zero-shot interleaved", "FT-Small", "FT-Large", "original · mismatched",
                 "position=start", "no cue", "replay=0", "LoRA r=4", "FT-Large ×0.5", "FT-Large intruders×0.5",
                 "FT-Large EWC λ=10", "control (original)"):
        assert name in names, name
    kinds = {s["kind"] for s in result["stages"]}
    assert kinds == {"shard", "data", "train", "eval", "attention"}
    assert all((out / "stages" / s["id"] / "done.json").is_file() for s in result["stages"])
    assert {x["name"] for x in result["losses"]} >= {"FT-Small", "FT-Large", "replay=0", "LoRA r=4",
                                                    "FT-Large EWC λ=10"}
    report = (out / "report.md").read_text()
    for section in ("## The paper's table", "## Forgetting and its mitigations", "## Where attention goes"):
        assert section in report, section


def test_tunings_start_from_ltu_merged_and_scoring_is_generate(paper):
    out, result = paper
    train = next(s for s in result["stages"] if s["name"] == "FT-Small" and s["kind"] == "train")
    setup = json.loads((out / "stages" / train["id"] / "setup.json").read_text())
    assert "merge=1" in setup["config"]["model"] and setup["trainable"]["by_part"]["lora"] > 0
    ev = next(s for s in result["stages"] if s["name"] == "original" and s["kind"] == "eval")
    records = [json.loads(x) for x in (out / "stages" / ev["id"] / "samples" / "prepended" / "synonym.jsonl")
               .read_text().splitlines()]
    assert records and all(isinstance(r["raw"], str) for r in records if r["error"] is None)  # decoded text
