"""The bundled sample set's synthesized classes: one function per AudioSet class whose sound *is* a signal we can
write down (tones, noises, telephone signalling, sirens, alarm beep patterns, clicks, a tuning fork, a struck bell),
each drawing its parameters from the generator it is given, so a seed fixes every sample. `samples.py` crops,
labels, splits and writes them beside the real recordings.
"""

from collections.abc import Callable

import numpy as np

SR = 16_000


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


def synthesize(key: str, rng: np.random.Generator, n: int, variant: int) -> np.ndarray:
    """Class `key`'s sound, `n` samples at SR, faded in and out over 10 ms; `variant` picks among the national
    dial tones and busy signals, and is ignored by the other classes (their variety comes from `rng`)."""
    fn = SYNTHS[key][0]
    return _fade(fn(rng, n, variant) if fn in _VARIANT_INDEXED else fn(rng, n), 10.0)
