"""Load any clip a user points at as one float32 mono waveform at 16 kHz, or say in one line why not.

Every encoder downstream assumes 16 kHz mono float32; converting once here, with every accepted and rejected
case written down, keeps odd files (8-bit, 192 kHz, stereo, NaN-poisoned) from reaching a model as silent garbage.

| input                                | result                                                                     |
|--------------------------------------|----------------------------------------------------------------------------|
| wav, flac, ogg, mp3 (via libsndfile) | read with soundfile                                                        |
| stereo or multichannel               | mean downmix to mono                                                       |
| 8/16/24/32-bit integer samples       | float32 in [-1, 1] (soundfile scales; `prepare` scales int arrays alike)   |
| float samples                        | float32 as stored (not clipped or rescaled)                                |
| sample rate 8 kHz .. 192 kHz         | resampled to 16 kHz, `librosa.resample(res_type="soxr_hq")`                |
| sample rate below 8 or above 192 kHz | error                                                                      |
| `start` / `end` (seconds)            | that span; `end` past the file is clipped; `start` at/after the end: error |
| longer than `max_seconds`            | cut to `max_seconds` (logged at debug level)                               |
| empty file, zero samples             | error                                                                      |
| NaN or inf samples                   | error                                                                      |
| all zeros (silence)                  | accepted: silence is valid audio                                           |
| shorter than one 25 ms frame         | accepted: front ends pad                                                   |
| missing, unreadable or corrupt file  | error                                                                      |

Every error is a `ShardkitError` with one line: `"<path>: <problem>"`.
"""

import logging
import math
from pathlib import Path

import numpy as np
import soundfile as sf

from shardkit.errors import ShardkitError
from shardkit.files import quiet_stderr

log = logging.getLogger(__name__)

SR = 16_000
MIN_SR = 8_000
MAX_SR = 192_000


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _check_rate(sr: float, where: str) -> int:
    if not isinstance(sr, int | np.integer) and not (isinstance(sr, float) and sr.is_integer()):
        raise ShardkitError(f"{where}: sample rate must be a whole number of Hz, got {sr!r}")
    if not MIN_SR <= int(sr) <= MAX_SR:
        raise ShardkitError(f"{where}: sample rate {int(sr)} Hz is outside the supported {MIN_SR}..{MAX_SR} Hz")
    return int(sr)


def _to_float(x: np.ndarray, where: str) -> np.ndarray:
    """Integer PCM to float32 in [-1, 1], as soundfile scales it; float passes through as float32."""
    if x.dtype.kind == "f":
        return x.astype(np.float32, copy=False)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        half = (int(info.max) + 1) / 2 if x.dtype.kind == "u" else int(info.max) + 1
        offset = half if x.dtype.kind == "u" else 0.0
        return ((x.astype(np.float64) - offset) / half).astype(np.float32)
    raise ShardkitError(f"{where}: unsupported sample type {x.dtype}; expected integer or float samples")


def prepare(wave: np.ndarray, sr: int, where: str = "<array>") -> np.ndarray:
    """Validate an in-memory waveform and convert it to float32 mono at 16 kHz (see the module table).

    wave: [n] or [n, channels] samples, integer or float. `where` names the source in error messages.
    Returns [n16] float32, n16 = ceil(n * 16000 / sr).
    """
    x = np.asarray(wave)
    if x.ndim not in (1, 2):
        raise ShardkitError(f"{where}: expected audio of shape [n] or [n, channels], got shape {list(x.shape)}")
    if x.size == 0:
        raise ShardkitError(f"{where}: no audio samples (empty)")
    if x.ndim == 2 and x.shape[1] > x.shape[0]:
        raise ShardkitError(f"{where}: shape {list(x.shape)} has more channels than samples; "
                            f"expected [n, channels] (pass the transpose if it is channels-first)")
    sr = _check_rate(sr, where)
    x = _to_float(x, where)
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise ShardkitError(f"{where}: {bad} NaN/inf samples; audio must be finite")
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)  # [n, channels] -> [n]
    peak = float(np.abs(x).max())
    if peak > 1.0:
        log.debug("%s: peak %.3f exceeds 1.0; kept as stored", where, peak)
    if sr != SR:
        import librosa  # deferred: importing librosa costs ~1 s and most clips are already 16 kHz

        x = librosa.resample(x, orig_sr=sr, target_sr=SR, res_type="soxr_hq")
        if x.size == 0:
            raise ShardkitError(f"{where}: no audio samples left after resampling {sr} Hz to {SR} Hz")
    return np.ascontiguousarray(x, dtype=np.float32)


def load_audio(
    path: str | Path, start: float = 0.0, end: float | None = None, max_seconds: float | None = None
) -> np.ndarray:
    """Read `path` (seconds `start`..`end`, at most `max_seconds`) as float32 mono at 16 kHz.

    Returns [n] float32 at 16 kHz. Raises ShardkitError (one line, naming `path`) for every case the module
    table lists as an error.
    """
    path = Path(path)
    for name, value in (("start", start), ("end", end), ("max_seconds", max_seconds)):
        if value is not None and not math.isfinite(value):
            raise ShardkitError(f"{path}: {name} must be a finite number of seconds, got {value!r}")
    if start < 0:
        raise ShardkitError(f"{path}: start must be >= 0 seconds, got {start}")
    if end is not None and end <= start:
        raise ShardkitError(f"{path}: end ({end}s) must be after start ({start}s)")
    if max_seconds is not None and max_seconds <= 0:
        raise ShardkitError(f"{path}: max_seconds must be > 0, got {max_seconds}")
    if not path.exists():
        raise ShardkitError(f"{path}: file not found")
    if not path.is_file():
        raise ShardkitError(f"{path}: not a file")
    try:
        with quiet_stderr(), sf.SoundFile(path) as f:
            sr, frames = _check_rate(f.samplerate, str(path)), f.frames
            if frames <= 0:
                raise ShardkitError(f"{path}: no audio samples (empty file)")
            first = int(round(start * sr))
            if first >= frames:
                raise ShardkitError(f"{path}: start {start}s is beyond the end of the file ({frames / sr:.3f}s long)")
            stop = frames if end is None else min(frames, int(round(end * sr)))
            if max_seconds is not None and stop - first > round(max_seconds * sr):
                log.debug("%s: %.3fs selected, cut to max_seconds=%s", path, (stop - first) / sr, max_seconds)
                stop = first + int(round(max_seconds * sr))
            f.seek(first)
            data = f.read(stop - first, dtype="float32", always_2d=True)  # [n, channels]
    except (sf.SoundFileError, RuntimeError) as e:
        raise ShardkitError(f"{path}: cannot read audio ({_one_line(getattr(e, 'error_string', '') or e)})") from e
    x = prepare(data, sr, where=str(path))
    if max_seconds is not None:
        x = x[: int(round(max_seconds * SR))]  # resampling may round up by a sample
    return x
