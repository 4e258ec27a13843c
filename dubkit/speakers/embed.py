"""Speaker embeddings (d-vectors) with Resemblyzer's pretrained encoder, without torch.

The weights are the ``pretrained.pt`` that ships inside the ``resemblyzer`` wheel (Apache-2.0,
GE2E-trained 3-layer LSTM, 40 mel channels at 16 kHz). The package is installed only for that
file (``pip install --no-deps resemblyzer``) and is never imported: its ``__init__`` imports
torch and librosa. This module reads the file without torch and computes the same embedding as
``resemblyzer.VoiceEncoder.embed_utterance`` on ``resemblyzer.preprocess_wav``'s output, minus
its webrtcvad silence trimming (dubkit's utterances are already cut by a VAD):

* :func:`weights_path` finds the file through the import system's spec (no import) and checks
  its SHA-256 against :data:`WEIGHTS_SHA256` (a missing package or another file is one
  :class:`~dubkit.errors.ConfigError` that says how to install it);
* :func:`load_weights` reads it with :func:`dubkit.torchfile.read`, whose restricted unpickler
  accepts only ``OrderedDict``, torch's tensor rebuild and typed storage names (numpy's array
  names are not allowed here) and refuses anything else;
* :class:`SpeakerEncoder` embeds utterances: volume raised to -30 dBFS (never lowered), a
  power mel spectrogram (25 ms Hann window, 10 ms hop, 400-point FFT, 40 Slaney mels, centred
  frames with zero padding as librosa 0.10+), 1.6 s partial windows at 1.3 per second, the
  LSTM's last hidden state -> linear -> ReLU -> L2 norm per window, windows averaged, L2 norm.
  The LSTM and the linear layer run in onnxruntime (:func:`lstm_graph`, built once and kept
  in the cache folder) where it and ``onnx`` are installed (the ``local`` extra), else in
  numpy.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dubkit import torchfile
from dubkit.errors import ConfigError

F32 = npt.NDArray[np.float32]

RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s per partial window
PARTIAL_RATE = 1.3  # partial windows per second (embed_utterance's default)
MIN_COVERAGE = 0.75  # a last window this full or more is kept (zero-padded)
TARGET_DBFS = -30.0  # preprocess_wav raises quieter audio to this RMS level
HIDDEN = 256
LAYERS = 3
EMBEDDING = 256
#: Partial windows pushed through the LSTM together (~12 MB of gate inputs at 16).
BATCH = 16

#: The weights this module is written for: ``resemblyzer/pretrained.pt`` of resemblyzer 0.1.4.
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
INSTALL_HINT = "pip install --no-deps resemblyzer==0.1.4 (scripts/setup.sh does it)"


# ---------------------------------------------------------------- reading pretrained.pt


def weights_path(package: str = "resemblyzer") -> Path:
    """``pretrained.pt`` inside the installed ``package``, found without importing it (its
    ``__init__`` imports torch), with the pinned SHA-256; else :class:`ConfigError`."""
    spec = importlib.util.find_spec(package)
    folders = (spec.submodule_search_locations or []) if spec is not None else []
    found = [Path(f) / "pretrained.pt" for f in folders]
    path = next((p for p in found if p.is_file()), None)
    if path is None:
        raise ConfigError(f"the speaker encoder's weights are not installed: {INSTALL_HINT}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ConfigError(
            f"not the speaker encoder dubkit expects (SHA-256 {digest[:12]}..., "
            f"not {WEIGHTS_SHA256[:12]}...): {INSTALL_HINT}", path=path,
        )  # fmt: skip
    return path


def read_torch_state(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of ``checkpoint["model_state"]`` in a torch ``.pt`` file (zip or legacy
    format), as numpy arrays, read by :func:`dubkit.torchfile.read`: nothing but dicts, tensors
    and plain values is ever unpickled."""
    checkpoint = torchfile.read(path)
    state = checkpoint.get("model_state", checkpoint)
    return {k: v for k, v in state.items() if isinstance(v, np.ndarray)}


def load_weights(path: Path | None = None) -> dict[str, npt.NDArray[np.float32]]:
    """The encoder's tensors (``lstm.*``, ``linear.*``) as float32 arrays, from ``path``
    (default :func:`weights_path`). Reading the 17 MB file takes about 10 ms, so no cache."""
    state = read_torch_state(path or weights_path())
    return {k: v.astype(np.float32) for k, v in state.items() if k.startswith(("lstm.", "linear."))}


# ---------------------------------------------------------------- features


def _hz_to_mel(f: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Slaney's mel scale (librosa's default, htk=False): linear to 1 kHz, then log."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m: npt.ArrayLike) -> npt.NDArray[np.float64]:
    m = np.asarray(m, dtype=np.float64)
    lin = m * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, lin)


def mel_filterbank(rate: int = RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> F32:
    """``librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels)``: Slaney mels from 0 Hz to
    Nyquist, triangles normalised to unit area (norm="slaney"); shape (n_mels, n_fft//2+1)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(rate / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / rate)
    ramps = edges[:, None] - bins[None, :]
    width = np.diff(edges)
    lower = -ramps[:-2] / width[:-1, None]
    upper = ramps[2:] / width[1:, None]
    bank = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return bank.astype(np.float32)


_BANK = mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def mel_spectrogram(wav: npt.ArrayLike) -> F32:
    """Power mel spectrogram, one row per 10 ms (``resemblyzer.audio.wav_to_mel_spectrogram``):
    frames centred on ``k * HOP`` with the signal zero-padded by ``N_FFT // 2`` each side."""
    from scipy.fft import rfft

    x = np.pad(np.asarray(wav, dtype=np.float32), N_FFT // 2)
    n = 1 + (x.size - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(x, (n, N_FFT), (HOP * x.itemsize, x.itemsize))
    spec = rfft(frames * _WINDOW, axis=1)
    power = spec.real**2 + spec.imag**2
    return np.asarray(power @ _BANK.T, dtype=np.float32)


def partial_slices(
    n_samples: int, rate: float = PARTIAL_RATE, min_coverage: float = MIN_COVERAGE
) -> list[slice]:
    """Mel-frame slices of the partial windows (``VoiceEncoder.compute_partial_slices``):
    1.6 s windows every ``1/rate`` s over the utterance, the last dropped when less than
    ``min_coverage`` of it is audio (unless it is the only one)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((RATE / rate) / HOP))
    if not 0 < step <= PARTIAL_FRAMES:
        raise ValueError(f"partial rate {rate} out of range")
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    last = starts[-1] * HOP
    if len(starts) > 1 and (n_samples - last) / (PARTIAL_FRAMES * HOP) < min_coverage:
        starts.pop()
    return [slice(s, s + PARTIAL_FRAMES) for s in starts]


def as_float(pcm: npt.ArrayLike) -> F32:
    """int16 samples as floats in [-1, 1); float input is taken as it is."""
    a = np.asarray(pcm)
    if a.dtype == np.int16:
        return (a.astype(np.float32) / 32768.0).astype(np.float32)
    return a.astype(np.float32)


def normalize_volume(wav: F32, target_dbfs: float = TARGET_DBFS) -> F32:
    """Raise ``wav`` to an RMS of ``target_dbfs`` when it is quieter (never lower it), as
    ``resemblyzer.preprocess_wav`` does."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
    if rms <= 0.0:
        return wav
    change = target_dbfs - 20 * np.log10(rms)
    return wav if change < 0 else (wav * np.float32(10 ** (change / 20))).astype(np.float32)


# ---------------------------------------------------------------- the encoder


#: Changes whenever the graph :func:`lstm_graph` builds changes (part of its kept file's name).
GRAPH_VERSION = 1


def kept_graph(cache: Path) -> Path:
    """Where the graph of the installed weights (:data:`WEIGHTS_SHA256`) is kept in the
    folder ``cache`` (:func:`dubkit.onnxrt.cached_session`)."""
    return cache / f"resemblyzer-lstm-{WEIGHTS_SHA256[:16]}-{GRAPH_VERSION}.onnx"


def lstm_graph(weights: dict[str, npt.NDArray[np.float32]]) -> bytes:
    """The encoder as one serialized ONNX graph: input ``mels`` (frames, batch, 40) float32,
    output ``e`` (batch, 256), each window's ReLU'd projection (not yet L2-normed). Three
    ONNX ``LSTM`` nodes, their gates reordered from PyTorch's (i, f, g, o) to ONNX's
    (i, o, f, c), then the linear layer (about 5 MB)."""
    from onnx import TensorProto, helper, numpy_helper

    from dubkit import onnxrt

    def onnx_order(m: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        i, f, g, o = np.split(m, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0)

    arrays: dict[str, npt.NDArray[Any]] = {"ax0": np.array([0], np.int64),
                                           "ax1": np.array([1], np.int64)}  # fmt: skip
    nodes, x = [], "mels"
    for k in range(LAYERS):
        arrays[f"W{k}"] = onnx_order(weights[f"lstm.weight_ih_l{k}"])[None]
        arrays[f"R{k}"] = onnx_order(weights[f"lstm.weight_hh_l{k}"])[None]
        biases = (onnx_order(weights[f"lstm.bias_{n}_l{k}"]) for n in ("ih", "hh"))
        arrays[f"B{k}"] = np.concatenate(list(biases))[None]
        nodes.append(helper.make_node("LSTM", [x, f"W{k}", f"R{k}", f"B{k}"],
                                      [f"y{k}", f"h{k}"], hidden_size=HIDDEN))  # fmt: skip
        nodes.append(helper.make_node("Squeeze", [f"y{k}", "ax1"], [f"s{k}"]))  # one direction
        x = f"s{k}"
    arrays["LW"] = np.ascontiguousarray(weights["linear.weight"].T)
    arrays["LB"] = weights["linear.bias"]
    nodes += [
        helper.make_node("Squeeze", [f"h{LAYERS - 1}", "ax0"], ["last"]),
        helper.make_node("MatMul", ["last", "LW"], ["proj"]),
        helper.make_node("Add", ["proj", "LB"], ["biased"]),
        helper.make_node("Relu", ["biased"], ["e"]),
    ]
    graph = helper.make_graph(
        nodes,
        "resemblyzer_encoder",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, [PARTIAL_FRAMES, "B", N_MELS])],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["B", EMBEDDING])],
        [numpy_helper.from_array(np.ascontiguousarray(a), n) for n, a in arrays.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnxrt.OPSET)])
    model.ir_version = onnxrt.IR_VERSION
    return bytes(model.SerializeToString())


class SpeakerEncoder:
    """Resemblyzer's d-vector encoder: its LSTM in onnxruntime where installed (about 1.9x
    less CPU than numpy, the same embeddings within 1e-4), else in numpy (float32; BLAS
    matmuls, one tanh per step). ``runtime``: "auto", "onnx" or "numpy".

    The installed weights' graph is kept in the cache folder (``$DUBKIT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/dubkit`` or ``~/.cache/dubkit``), so that ``onnx`` is imported (about a
    second of CPU) only the first time; other ``weights`` are built in memory each time."""

    def __init__(
        self, weights: dict[str, npt.NDArray[np.float32]] | None = None, runtime: str = "auto"
    ) -> None:
        import os

        from dubkit import onnxrt
        from dubkit.files import default_cache_dir

        kept = kept_graph(default_cache_dir(os.environ)) if weights is None else None
        w = weights if weights is not None else load_weights()
        if runtime == "auto":
            runtime = "onnx" if onnxrt.available() else "numpy"
        if runtime not in ("onnx", "numpy"):
            raise ValueError(f"unknown runtime {runtime!r}")
        #: "onnx" or "numpy": which one embeds.
        self.runtime = runtime
        # one thread: the encoder runs beside the segmentation (or the dub) on shared cores
        self._session = (
            onnxrt.cached_session(lambda: lstm_graph(w), kept, threads=1)
            if runtime == "onnx"
            else None
        )
        # numpy's weights, prepared only where numpy embeds. sigmoid(x) = (1 + tanh(x/2)) / 2:
        # the i, f, o gate rows are halved once here, so each step needs a single tanh over
        # all four gates (PyTorch order i, f, g, o).
        self._layers: list[tuple[F32, F32, F32]] = []
        self._linear = (np.ascontiguousarray(w["linear.weight"].T), w["linear.bias"])
        half = np.ones(4 * HIDDEN, dtype=np.float32)
        half[: 2 * HIDDEN] = half[3 * HIDDEN :] = 0.5
        for k in range(LAYERS) if self._session is None else ():
            w_ih = w[f"lstm.weight_ih_l{k}"] * half[:, None]
            w_hh = w[f"lstm.weight_hh_l{k}"] * half[:, None]
            bias = (w[f"lstm.bias_ih_l{k}"] + w[f"lstm.bias_hh_l{k}"]) * half
            self._layers.append((np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), bias))

    def _projected(self, mels: F32) -> F32:
        """Each window's ReLU'd projection of the LSTM's last state (batch, EMBEDDING)."""
        if self._session is not None:
            seq = np.ascontiguousarray(mels.transpose(1, 0, 2), np.float32)
            return np.asarray(self._session.run(["e"], {"mels": seq})[0], np.float32)
        w, b = self._linear
        return np.maximum(self._lstm_last(mels) @ w + b, 0.0)

    def _lstm_last(self, mels: F32) -> F32:
        """The last layer's final hidden state for a batch of windows (batch, frames, mels)."""
        seq = np.ascontiguousarray(mels.transpose(1, 0, 2))  # (time, batch, features)
        t_len, batch = seq.shape[:2]
        h = np.zeros((batch, HIDDEN), np.float32)
        for k, (w_ih, w_hh, bias) in enumerate(self._layers):
            pre = seq.reshape(t_len * batch, -1) @ w_ih
            pre += bias
            pre = pre.reshape(t_len, batch, 4 * HIDDEN)
            last = k == LAYERS - 1
            out = None if last else np.empty((t_len, batch, HIDDEN), np.float32)
            h = np.zeros((batch, HIDDEN), np.float32)
            c = np.zeros((batch, HIDDEN), np.float32)
            gates = np.empty((batch, 4 * HIDDEN), np.float32)
            for t in range(t_len):
                np.matmul(h, w_hh, out=gates)
                gates += pre[t]
                np.tanh(gates, out=gates)
                i, f = gates[:, :HIDDEN], gates[:, HIDDEN : 2 * HIDDEN]
                g, o = gates[:, 2 * HIDDEN : 3 * HIDDEN], gates[:, 3 * HIDDEN :]
                c = (0.5 + 0.5 * f) * c + (0.5 + 0.5 * i) * g
                h = (0.5 + 0.5 * o) * np.tanh(c)
                if out is not None:
                    out[t] = h
            if out is not None:
                seq = out
        return h

    def embed_windows(self, mels: F32) -> F32:
        """L2-normed embedding of each partial window (batch, PARTIAL_FRAMES, N_MELS)."""
        out = []
        for a in range(0, len(mels), BATCH):
            e = self._projected(mels[a : a + BATCH])
            out.append(e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING), np.float32)

    def windows(self, pcm: npt.ArrayLike, normalize: bool = True) -> F32:
        """The partial windows' mel spectrograms of one 16 kHz utterance (int16 or float)."""
        wav = as_float(pcm)
        if normalize:
            wav = normalize_volume(wav)
        slices = partial_slices(wav.size)
        wav = np.pad(wav, (0, max(0, slices[-1].stop * HOP - wav.size)))
        mel = mel_spectrogram(wav)
        return np.stack([mel[s] for s in slices])

    def partials(self, pcm: npt.ArrayLike, normalize: bool = True) -> F32:
        """The L2-normed embedding of each partial window of one utterance (windows, 256):
        :meth:`embed` is their normalised mean."""
        return self.embed_windows(self.windows(pcm, normalize))

    def embed(self, pcm: npt.ArrayLike, normalize: bool = True) -> F32:
        """The utterance's embedding (256 floats, unit length, non-negative; all zeros when
        the network finds nothing in it, as for digital silence)."""
        out: F32 = self.embed_many([pcm], normalize)[0]
        return out

    def embed_many(self, pcms: Sequence[npt.ArrayLike], normalize: bool = True) -> F32:
        """Embeddings of several utterances (n, 256); their windows share LSTM batches."""
        per = [self.windows(p, normalize) for p in pcms]
        if not per:
            return np.zeros((0, EMBEDDING), np.float32)
        parts = self.embed_windows(np.concatenate(per))
        out, a = np.empty((len(per), EMBEDDING), np.float32), 0
        for n, w in enumerate(per):
            mean = parts[a : a + len(w)].mean(axis=0)
            out[n] = mean / max(float(np.linalg.norm(mean)), 1e-12)  # all-zero stays zero
            a += len(w)
        return out
