"""Front ends that turn a 16 kHz waveform into what an audio encoder was trained on.

LTU's CAV-MAE was trained on torchaudio's Kaldi-compatible log-mel filterbank with a fixed length and a fixed
normalisation; a feature that differs in any option (window, pre-emphasis, scale of the samples) is a different
input distribution, so every option is pinned here with its source.

Why not `kaldi-native-fbank`: with 128 mel bins on a 512-point FFT at 16 kHz, mel bin 3 (about 55-74 Hz) has no
FFT bin under its triangle (bins are 31.25 Hz apart). Kaldi and kaldi-native-fbank refuse such a filterbank
("You may have set num_mel_bins too large"); torchaudio, which LTU used, builds it and returns log(eps) in that
bin for every frame. So the Kaldi algorithm is written out below in numpy, exactly as torchaudio runs it, and the
tests pin it against kaldi-native-fbank at a bin count both accept (80).
"""

import logging

import numpy as np

from shardkit.errors import ShardkitError

log = logging.getLogger(__name__)

# LTU `inference_batch.py::load_audio` → torchaudio.compliance.kaldi.fbank(waveform, htk_compat=True,
# sample_frequency=sr, use_energy=False, window_type='hanning', num_mel_bins=128, dither=0.0, frame_shift=10);
# everything else is torchaudio's default (documented signature of torchaudio.compliance.kaldi.fbank).
SR = 16_000  # LTU assumes 16 kHz audio ("please convert all audios to 16khz")
NUM_MEL_BINS = 128  # LTU
FRAME_LENGTH_MS = 25.0  # torchaudio default
FRAME_SHIFT_MS = 10.0  # LTU (= torchaudio default)
PREEMPHASIS = 0.97  # torchaudio default preemphasis_coefficient
REMOVE_DC_OFFSET = True  # torchaudio default: subtract each frame's mean
LOW_FREQ, HIGH_FREQ = 20.0, 0.0  # torchaudio defaults; high_freq <= 0 means Nyquist + high_freq
EPS = float(np.finfo(np.float32).eps)  # torchaudio floors mel energies at float32 eps before the log
# dither=0 (LTU); use_energy=False (LTU), so htk_compat=True changes nothing; round_to_power_of_two=True (512-point
# FFT), snip_edges=True, use_power=True, use_log_fbank=True, subtract_mean=False (torchaudio defaults).
# Samples are used as given, floats in [-1, 1]: torchaudio.load returns them so and neither LTU nor torchaudio's
# fbank rescales to int16 range (hence LTU's mean of -5.081 rather than Kaldi's usual positive log energies).

# LTU: zero-pad at the end or cut to 1024 frames (10.24 s), then (fbank + 5.081) / 4.4849 (AudioSet mean and std
# as LTU's load_audio hard-codes them).
TARGET_FRAMES = 1024
NORM_MEAN, NORM_STD = -5.081, 4.4849


def _mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_banks(num_bins: int, n_fft: int, sr: int = SR, low: float = LOW_FREQ, high: float = HIGH_FREQ) -> np.ndarray:
    """Kaldi's triangular mel filters over FFT bins 0..n_fft/2 (the Nyquist column is zero, as in Kaldi).

    Shapes: → [n_fft/2 + 1, num_bins]. A bin whose triangle covers no FFT bin is an all-zero column.
    """
    high = high if high > 0 else sr / 2 + high
    lo, hi = _mel(low), _mel(high)
    step = (hi - lo) / (num_bins + 1)
    edges = lo + step * np.arange(num_bins + 2)  # [num_bins + 2]: left, centre, right of each triangle
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # each [num_bins, 1]
    m = _mel(np.arange(n_fft // 2) * sr / n_fft)[None]  # [1, n_fft/2]
    up, down = (m - left) / (centre - left), (right - m) / (right - centre)
    w = np.maximum(0.0, np.minimum(up, down))  # [num_bins, n_fft/2]
    return np.concatenate([w, np.zeros((num_bins, 1))], axis=1).T  # [n_fft/2 + 1, num_bins]


def kaldi_fbank(wave: np.ndarray, num_bins: int = NUM_MEL_BINS, sr: int = SR) -> np.ndarray:
    """Log-mel filterbank as torchaudio.compliance.kaldi.fbank computes it with LTU's options (float64 inside).

    Shapes: wave [n] → [frames, num_bins], frames = 1 + (n - 400) // 160 (0 when n < 400, snip_edges).
    """
    size = int(sr * FRAME_LENGTH_MS / 1000)  # 400 samples
    shift = int(sr * FRAME_SHIFT_MS / 1000)  # 160 samples
    n_fft = 1 << (size - 1).bit_length()  # 512: round_to_power_of_two
    x = np.asarray(wave, dtype=np.float64)
    if len(x) < size:
        return np.zeros((0, num_bins), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[::shift]  # [frames, size]
    if REMOVE_DC_OFFSET:
        frames = frames - frames.mean(axis=1, keepdims=True)
    prev = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)  # [frames, size]: x[-1] := x[0], as Kaldi
    frames = frames - PREEMPHASIS * prev
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / (size - 1))  # Kaldi "hanning" (symmetric)
    power = np.abs(np.fft.rfft(frames * window, n=n_fft, axis=1)) ** 2  # [frames, n_fft/2 + 1]
    energies = power @ mel_banks(num_bins, n_fft, sr)  # [frames, num_bins]
    return np.log(np.maximum(energies, EPS)).astype(np.float32)


def ltu_fbank(wave: np.ndarray) -> np.ndarray:
    """LTU's encoder input for one 16 kHz mono float waveform: normalised log-mel, padded or cut to 1024 frames.

    Mean-subtracts the wave, computes `kaldi_fbank` (128 bins), zero-pads at the end (in the log domain, as LTU
    does) or cuts to 1024 frames, then applies (fbank + 5.081) / 4.4849.

    Shapes: wave [n] (float, 16 kHz) → [1024, 128] float32 (time, frequency).
    """
    x = np.asarray(wave)
    if x.ndim != 1:
        raise ShardkitError(f"ltu_fbank: expected a mono waveform of shape [n], got shape {tuple(x.shape)}; "
                            f"load it with shardkit.audio.io.load_audio")
    if x.size == 0:
        raise ShardkitError("ltu_fbank: the waveform has no samples; record the clip as unavailable")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ShardkitError("ltu_fbank: the waveform contains NaN or inf samples; check the source file")
    fbank = kaldi_fbank(x - x.mean())  # [frames, 128]; LTU subtracts the mean in float32 before the fbank
    n = fbank.shape[0]
    if n < TARGET_FRAMES:
        log.debug("ltu_fbank: padding %d frames to %d", n, TARGET_FRAMES)
        fbank = np.concatenate([fbank, np.zeros((TARGET_FRAMES - n, NUM_MEL_BINS), np.float32)])  # [1024, 128]
    fbank = fbank[:TARGET_FRAMES]  # [1024, 128]
    return ((fbank - NORM_MEAN) / NORM_STD).astype(np.float32)
