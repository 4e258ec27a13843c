"""The speaker encoder (Resemblyzer's d-vector in numpy): loading its pinned weights from the
installed wheel with no network, refusing anything else, and telling real people apart."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dubkit import onnxrt, torchfile
from dubkit.errors import ConfigError
from dubkit.speakers import embed
from tests.realspeech_set import rs


def test_the_model_loads_from_the_installed_wheel_with_no_network() -> None:
    """In a fresh interpreter whose sockets all fail, with Hugging Face told to stay offline:
    the weights are found without importing resemblyzer (or torch) and an embedding comes out."""
    script = textwrap.dedent("""
        import socket, sys
        def refuse(*a, **k):
            raise OSError("no network in this test")
        socket.socket = refuse
        socket.create_connection = refuse
        import numpy as np
        from dubkit.speakers.embed import SpeakerEncoder, weights_path
        path = weights_path()
        e = SpeakerEncoder().embed(np.zeros(16000, np.int16) + 100)
        assert "resemblyzer" not in sys.modules and "torch" not in sys.modules
        print(path.name, e.shape, round(float(np.linalg.norm(e)), 4))
    """)
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    env |= {k: v for k, v in __import__("os").environ.items() if k == "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, check=False, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pretrained.pt", "(256,)", "1.0"]


def test_another_weights_file_is_refused_with_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "resemblyzer"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('never imported')\n")
    (fake / "pretrained.pt").write_bytes(b"not the weights")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"not the speaker encoder .*pip install --no-deps"):
        embed.weights_path()
    with pytest.raises(ConfigError, match=r"not installed: pip install --no-deps resemblyzer"):
        embed.weights_path("no_such_package_here")


def test_the_unpickler_refuses_anything_but_tensors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(pickle.dumps(torchfile.LEGACY_MAGIC) + pickle.dumps(Path("/etc")))
    refused = r"refused to unpickle pathlib\.\w+ in .*bad\.pt"
    with pytest.raises(pickle.UnpicklingError, match=refused):
        embed.read_torch_state(bad)


def _halves() -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Each codec2 person's recording cut in two: two different stretches of their speech."""
    enc = embed.SpeakerEncoder()
    out = {}
    for r in rs.RECORDINGS:
        x = np.round(rs.load(r.path) * 32767).astype(np.int16)
        a, b = enc.embed_many([x[: x.size // 2], x[x.size // 2 :]])
        out[r.name] = (a, b, r.gender)
    return out


def test_one_person_is_closer_to_themself_than_to_anyone_else() -> None:
    """On all twelve codec2 people: the two halves of one person's recording are closer (in
    cosine) than either is to any half of another person of the same gender. Measured on
    2026-12-05: the same person 0.72 to 0.92, other people at most 0.79, the narrowest
    margin kristoff's (0.725 against 0.699)."""
    halves = _halves()
    for name, (a, b, gender) in halves.items():
        same = float(a @ b)
        others = [float(a @ o) for k, (o1, o2, g) in halves.items()
                  if k != name and g == gender for o in (o1, o2)]  # fmt: skip
        assert same > max(others), (name, same, max(others))
        assert float(np.linalg.norm(a)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.skipif(not onnxrt.available(), reason="onnxruntime not installed")
def test_onnxruntime_embeds_real_speech_as_numpy_does() -> None:
    """The LSTM in onnxruntime gives numpy's embeddings on real speech (every codec2 person's
    first 4 s: 1-5 windows each), and an encoder chooses it by itself where it is installed."""
    weights = embed.load_weights()
    fast, slow = embed.SpeakerEncoder(weights), embed.SpeakerEncoder(weights, runtime="numpy")
    assert (fast.runtime, slow.runtime) == ("onnx", "numpy")
    clips = [np.round(rs.load(r.path)[: 4 * embed.RATE] * 32767).astype(np.int16)
             for r in rs.RECORDINGS]  # fmt: skip
    a, b = fast.embed_many(clips), slow.embed_many(clips)
    assert np.abs(a - b).max() < 1e-4
    assert float(np.min(np.sum(a * b, axis=1))) > 0.99999
    # a different weight moves the result: the graph really carries these weights
    bent = dict(weights, **{"lstm.weight_hh_l2": weights["lstm.weight_hh_l2"] * 1.1})
    assert np.abs(embed.SpeakerEncoder(bent).embed_many(clips[:2]) - a[:2]).max() > 1e-3


def test_without_onnxruntime_numpy_embeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxrt, "available", lambda: False)
    enc = embed.SpeakerEncoder()
    assert enc.runtime == "numpy"
    e = enc.embed(np.round(rs.load(rs.RECORDINGS[0].path)[:16000] * 32767).astype(np.int16))
    assert float(np.linalg.norm(e)) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="unknown runtime"):
        embed.SpeakerEncoder(runtime="torch")


def test_dubkit_onnx_0_turns_onnxruntime_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUBKIT_ONNX", "0")
    assert not onnxrt.available()
    assert embed.SpeakerEncoder().runtime == "numpy"


@pytest.mark.skipif(not onnxrt.available(), reason="onnxruntime not installed")
def test_the_encoder_s_graph_is_built_once_and_kept(tmp_path: Path) -> None:
    """Fresh interpreters, as a dub's speaker child is: the first builds the graph (importing
    onnx, about a second of CPU) and keeps it in the cache folder; the next loads the kept
    file without importing onnx and embeds the same; a damaged file is built again."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from dubkit.speakers.embed import SpeakerEncoder
        clip = (np.sin(np.arange(32000) * 0.07) * 3000).astype(np.int16)
        e = SpeakerEncoder().embed(clip)
        print("onnx" in sys.modules, " ".join(f"{v:.9f}" for v in e[:8]))
    """)
    env = {k: v for k, v in __import__("os").environ.items() if k in ("PATH", "PYTHONPATH")}
    env["DUBKIT_CACHE_DIR"] = str(tmp_path)

    def run() -> tuple[str, str]:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, check=True, timeout=120)  # fmt: skip
        imported, values = done.stdout.strip().split(" ", 1)
        return imported, values

    first = run()
    kept = embed.kept_graph(tmp_path)
    assert first[0] == "True" and kept.stat().st_size > 1_000_000
    assert run() == ("False", first[1])
    kept.write_bytes(b"not a graph")
    assert run() == ("True", first[1])
    assert kept.stat().st_size > 1_000_000  # written again


@pytest.mark.skipif(not onnxrt.available(), reason="onnxruntime not installed")
def test_a_graph_that_cannot_be_kept_is_built_in_memory(tmp_path: Path) -> None:
    """Where the cache folder cannot be made (here a file stands in its way), the session
    still runs, from the graph built in memory, and nothing is left behind."""
    from onnx import TensorProto, helper

    def build() -> bytes:
        built.append(1)
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
        graph = helper.make_graph([helper.make_node("Neg", ["x"], ["y"])], "neg", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnxrt.OPSET)])
        model.ir_version = onnxrt.IR_VERSION
        return bytes(model.SerializeToString())

    built: list[int] = []
    (tmp_path / "cache").write_text("a file, not a folder")
    kept = tmp_path / "cache" / "neg.onnx"
    for _ in range(2):  # built each time: there is nowhere to keep it
        session = onnxrt.cached_session(build, kept, threads=1)
        out = session.run(["y"], {"x": np.array([1.0, -2.0], np.float32)})[0]
        assert out.tolist() == [-1.0, 2.0]
    assert len(built) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    kept = tmp_path / "ok" / "neg.onnx"  # and where it can be kept, it is built once
    for _ in range(2):
        onnxrt.cached_session(build, kept, threads=1)
    assert len(built) == 3 and kept.is_file()
