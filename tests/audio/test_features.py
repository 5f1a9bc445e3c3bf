"""LTU's front end: shape, padding and cutting, where a tone lands, determinism, and agreement with Kaldi."""

import numpy as np
import pytest

from shardkit.audio import features
from shardkit.audio.features import NORM_MEAN, NORM_STD, kaldi_fbank, ltu_fbank, mel_banks
from shardkit.errors import ShardkitError

SR = 16_000
PAD = (0.0 - NORM_MEAN) / NORM_STD  # a padded frame: zero in the log-mel domain, then normalised


def tone(hz: float, seconds: float, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * hz * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def test_shape_dtype_and_end_padding():
    x = noise(3.0)
    out = ltu_fbank(x)
    n = 1 + (len(x) - 400) // 160  # snip_edges framing: 298 frames
    assert out.shape == (1024, 128) and out.dtype == np.float32
    assert np.all(out[n:] == np.float32(PAD))
    assert not np.any(np.all(out[:n] == np.float32(PAD), axis=1))


def test_long_clip_is_cut_to_1024_frames():
    x = noise(12.0)
    out = ltu_fbank(x)
    full = (kaldi_fbank(x - x.mean()) - NORM_MEAN) / NORM_STD  # [1197, 128]
    assert full.shape[0] > 1024 and out.shape == (1024, 128)
    np.testing.assert_array_equal(out, full[:1024].astype(np.float32))


def test_shorter_than_one_frame_is_all_padding():
    assert np.all(ltu_fbank(noise(0.02)) == np.float32(PAD))


def test_1khz_tone_lands_in_the_mel_bin_centred_near_1khz():
    out = ltu_fbank(tone(1000.0, 2.0))[:190]  # real frames only
    lo, hi = features._mel(features.LOW_FREQ), features._mel(SR / 2)
    centres = 700 * (np.exp((lo + (hi - lo) / 129 * np.arange(1, 129)) / 1127) - 1)  # Hz, one per bin
    expected = int(np.argmin(np.abs(centres - 1000)))
    assert abs(int(out.mean(axis=0).argmax()) - expected) <= 1
    assert out[:, expected].mean() > out[:, : expected - 10].mean() + 2  # far above low-frequency bins


def test_deterministic():
    x = noise(5.0, seed=3)
    assert ltu_fbank(x).tobytes() == ltu_fbank(x.copy()).tobytes()


def test_mel_bin_3_is_empty_as_in_torchaudio():
    """128 bins on a 512-point FFT leave bin 3 with no FFT bin: torchaudio (and we) give log(eps) there."""
    assert (mel_banks(128, 512).sum(axis=0) == 0).nonzero()[0].tolist() == [3]
    assert np.allclose(kaldi_fbank(noise(1.0))[:, 3], np.log(np.finfo(np.float32).eps))


def test_matches_kaldi_native_fbank_with_ltu_options():
    """Same algorithm as Kaldi: pinned against kaldi-native-fbank at 80 bins (it refuses LTU's 128, see module)."""
    knf = pytest.importorskip("kaldi_native_fbank")
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SR
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hanning"
    opts.frame_opts.frame_shift_ms, opts.frame_opts.frame_length_ms = 10.0, 25.0
    opts.frame_opts.preemph_coeff, opts.frame_opts.remove_dc_offset = 0.97, True
    opts.frame_opts.round_to_power_of_two, opts.frame_opts.snip_edges = True, True
    opts.mel_opts.num_bins, opts.mel_opts.low_freq, opts.mel_opts.high_freq = 80, 20.0, 0.0
    opts.use_energy, opts.htk_compat, opts.use_log_fbank, opts.use_power = False, True, True, True
    x = noise(2.0) + tone(440.0, 2.0)
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(SR, x.tolist())
    fb.input_finished()
    ref = np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])  # [frames, 80]
    ours = kaldi_fbank(x, num_bins=80)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 2e-3  # float32 (Kaldi) vs float64 (ours), log domain


@pytest.mark.parametrize("bad, words", [(np.zeros((2, 16000), np.float32), "shape"),
                                        (np.zeros(0, np.float32), "no samples"),
                                        (np.full(16000, np.nan, np.float32), "NaN")])
def test_bad_input_is_one_line_error(bad, words):
    with pytest.raises(ShardkitError, match=words) as e:
        ltu_fbank(bad)
    assert "\n" not in str(e.value)
