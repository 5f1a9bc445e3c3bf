import logging

import numpy as np
import pytest
import soundfile as sf

from shardkit.audio.io import SR, load_audio, prepare
from shardkit.errors import ShardkitError


def tone(sr: int, seconds: float = 1.0, freq: float = 1000.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[spec.argmax()])


def write(tmp_path, name, data, sr, **kw):
    path = tmp_path / name
    sf.write(path, data, sr, **kw)
    return path


def error_of(path, **kw) -> str:
    with pytest.raises(ShardkitError) as e:
        load_audio(path, **kw)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg


# ---------------------------------------------------------------- accepted, with conversion


def test_mono_16k_float_is_read_unchanged(tmp_path):
    x = tone(SR)
    y = load_audio(write(tmp_path, "a.wav", x, SR, subtype="FLOAT"))
    assert y.dtype == np.float32 and y.ndim == 1
    np.testing.assert_array_equal(y, x)


def test_stereo_is_mean_downmixed(tmp_path):
    left, right = tone(SR), np.full(SR, 0.25, np.float32)
    y = load_audio(write(tmp_path, "st.wav", np.stack([left, right], 1), SR, subtype="FLOAT"))
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-7)


def test_multichannel_is_mean_downmixed(tmp_path):
    x = np.stack([np.full(800, v, np.float32) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)], 1)
    np.testing.assert_allclose(load_audio(write(tmp_path, "6ch.wav", x, SR, subtype="FLOAT")), 0.35, atol=1e-6)


@pytest.mark.parametrize(("subtype", "tol"), [("PCM_U8", 1 / 64), ("PCM_16", 1e-4), ("PCM_24", 1e-6),
                                              ("PCM_32", 1e-6), ("FLOAT", 0), ("DOUBLE", 0)])
def test_integer_and_float_subtypes_become_float32_in_range(tmp_path, subtype, tol):
    x = tone(SR, 0.1, amp=0.9)
    y = load_audio(write(tmp_path, f"{subtype}.wav", x, SR, subtype=subtype))
    assert y.dtype == np.float32 and np.abs(y).max() <= 1.0
    np.testing.assert_allclose(y, x, atol=tol + 1e-7)


@pytest.mark.parametrize(("fmt", "subtype"), [("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_compressed_formats(tmp_path, fmt, subtype):
    y = load_audio(write(tmp_path, f"t.{fmt.lower()}", tone(SR), SR, format=fmt, subtype=subtype))
    assert abs(len(y) - SR) < SR * 0.1 and abs(peak_hz(y) - 1000) < 5


@pytest.mark.parametrize("sr", [8_000, 22_050, 44_100, 48_000, 96_000, 192_000])
def test_resampling_keeps_length_and_a_1khz_tone(tmp_path, sr):
    y = load_audio(write(tmp_path, f"{sr}.wav", tone(sr), sr, subtype="FLOAT"))
    assert y.dtype == np.float32 and abs(len(y) - SR) <= 1
    assert abs(peak_hz(y) - 1000) < 2
    assert abs(np.abs(y[1000:-1000]).max() - 0.5) < 0.02  # amplitude kept


def test_silence_is_accepted(tmp_path):
    y = load_audio(write(tmp_path, "zeros.wav", np.zeros(SR), SR))
    assert y.shape == (SR,) and not y.any()


def test_shorter_than_one_frame_is_accepted(tmp_path):
    assert load_audio(write(tmp_path, "10ms.wav", tone(SR, 0.010), SR)).shape == (160,)
    assert load_audio(write(tmp_path, "10ms-44k.wav", tone(44_100, 0.010), 44_100)).shape == (160,)


def test_start_end_select_seconds(tmp_path):
    ramp = np.arange(3 * SR, dtype=np.float32) / (4 * SR)
    path = write(tmp_path, "ramp.wav", ramp, SR, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path, start=1.0, end=2.5), ramp[SR : int(2.5 * SR)])
    np.testing.assert_array_equal(load_audio(path, start=2.0), ramp[2 * SR :])
    np.testing.assert_array_equal(load_audio(path, start=2.0, end=10.0), ramp[2 * SR :])  # end past the file


def test_start_end_with_resampling(tmp_path):
    path = write(tmp_path, "44k.wav", tone(44_100, 3.0), 44_100, subtype="FLOAT")
    assert abs(len(load_audio(path, start=0.5, end=2.0)) - int(1.5 * SR)) <= 1


def test_max_seconds_cuts_and_logs(tmp_path, caplog):
    path = write(tmp_path, "3s.wav", tone(48_000, 3.0), 48_000)
    with caplog.at_level(logging.DEBUG, logger="shardkit.audio.io"):
        y = load_audio(path, max_seconds=1.0)
    assert len(y) == SR and "max_seconds" in caplog.text
    assert len(load_audio(path, start=2.5, max_seconds=1.0)) == SR // 2  # only 0.5 s is left after start
    assert len(load_audio(path, max_seconds=10.0)) == 3 * SR


# ---------------------------------------------------------------- rejected, one line naming the file


def test_empty_file(tmp_path):
    assert "no audio samples" in error_of(write(tmp_path, "empty.wav", np.zeros(0), SR))


def test_nan_and_inf(tmp_path):
    x = tone(SR, 0.1)
    x[10], x[20] = np.nan, np.inf
    assert "2 NaN/inf samples" in error_of(write(tmp_path, "nan.wav", x, SR, subtype="FLOAT"))


@pytest.mark.parametrize("sr", [4_000, 7_999, 384_000])
def test_sample_rate_outside_range(tmp_path, sr):
    assert f"{sr} Hz" in error_of(write(tmp_path, f"{sr}.wav", np.zeros(sr // 10), sr))


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(bytes(range(256)) * 40)
    assert "cannot read audio" in error_of(path)


def test_truncated_mp3_header(tmp_path):
    path = tmp_path / "bad.mp3"
    path.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 50)
    error_of(path)


def test_missing_file_and_folder(tmp_path):
    assert "file not found" in error_of(tmp_path / "nope.wav")
    assert "not a file" in error_of(tmp_path)


def test_bad_spans(tmp_path):
    path = write(tmp_path, "1s.wav", tone(SR), SR)
    assert "beyond the end" in error_of(path, start=1.5)
    assert "beyond the end" in error_of(path, start=1.0)
    assert "after start" in error_of(path, start=0.5, end=0.5)
    assert ">= 0" in error_of(path, start=-1.0)
    assert "max_seconds" in error_of(path, max_seconds=0)
    assert "finite" in error_of(path, end=float("nan"))


# ---------------------------------------------------------------- prepare (in-memory arrays)


def test_prepare_scales_integer_arrays_like_soundfile():
    np.testing.assert_allclose(prepare(np.array([-32768, 0, 16384], np.int16), SR), [-1, 0, 0.5])
    np.testing.assert_allclose(prepare(np.array([0, 128, 192], np.uint8), SR), [-1, 0, 0.5])


def test_prepare_downmixes_and_resamples():
    y = prepare(np.stack([tone(48_000), tone(48_000)], 1).astype(np.float64), 48_000)
    assert y.dtype == np.float32 and abs(len(y) - SR) <= 1 and abs(peak_hz(y) - 1000) < 2


@pytest.mark.parametrize(("wave", "sr", "problem"), [
    (np.zeros((2, 16_000)), SR, "more channels than samples"),
    (np.zeros((4, 4, 4)), SR, "shape [n] or [n, channels]"),
    (np.zeros(0), SR, "no audio samples"),
    (np.array([0.0, np.nan]), SR, "NaN/inf"),
    (np.zeros(10), 4_000, "4000 Hz"),
    (np.zeros(10), 16_000.5, "whole number"),
    (np.array(["a", "b"]), SR, "unsupported sample type"),
])
def test_prepare_errors_name_the_source(wave, sr, problem):
    with pytest.raises(ShardkitError, match=r"^clip-7: .*") as e:
        prepare(wave, sr, where="clip-7")
    assert problem in str(e.value) and "\n" not in str(e.value)
