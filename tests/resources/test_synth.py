"""The synthesized classes: each is the signal its AudioSet class names, fixed by its generator's seed."""

import numpy as np
import pytest

from shardkit.resources.samples import SYNTH_SECONDS
from shardkit.resources.synth import DIAL_TONES, SR, SYNTHS, synthesize

N = int(SYNTH_SECONDS * SR)  # the length the sample set asks for


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[spectrum.argmax()])


@pytest.mark.parametrize("key", sorted(SYNTHS))
def test_every_class_is_finite_faded_and_fixed_by_its_seed(key):
    x = synthesize(key, np.random.default_rng(7), N, 0)
    assert x.shape == (N,) and np.isfinite(x).all() and np.abs(x).max() > 0.01
    assert x[0] == 0 and x[-1] == 0  # 10 ms fades: no click at either edge
    assert np.array_equal(x, synthesize(key, np.random.default_rng(7), N, 0))


def test_a_sine_is_one_tone_in_its_band():
    for seed in range(5):
        x = synthesize("sine", np.random.default_rng(seed), N, 0)
        assert 200 <= peak_hz(x) <= 2000
        power = np.abs(np.fft.rfft(x * np.hanning(N))) ** 2
        k = power.argmax()
        assert power[k - 5:k + 6].sum() > 0.99 * power.sum()  # one tone: all the energy within 1 Hz of the peak


def test_dial_tones_follow_each_country_and_ignore_the_generator():
    for variant, freqs in enumerate(DIAL_TONES):
        x = synthesize("dial_tone", np.random.default_rng(0), N, variant)
        assert np.array_equal(x, synthesize("dial_tone", np.random.default_rng(99), N, variant))
        assert min(abs(peak_hz(x) - f) for f in freqs) <= 2  # the loudest partial is one of the country's
    assert not np.array_equal(synthesize("dial_tone", np.random.default_rng(0), N, 0),
                              synthesize("dial_tone", np.random.default_rng(0), N, 2))
