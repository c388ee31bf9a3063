"""Accuracy of the int8 layer dtypes on two real models (docs/int8_a16.md):

- Resemblyzer's speaker encoder (3 x LSTM(40, 256) + Linear(256, 256) + ReLU, the pretrained weights of
  the resemblyzer wheel: RESEMBLYZER_PT, default /tmp/rz/resemblyzer/pretrained.pt) on 40-band mel
  energies (not log: what Resemblyzer feeds it) of synthetic speech-like audio (voiced_audio: harmonics
  of a gliding pitch under syllable-by-syllable formants, fricative noise) at -30 dBFS, through a NumPy copy of librosa's mel spectrogram
  (n_fft 400, hop 160, Slaney mel filterbank). Embedding = the normalised output after the last frame
  (Resemblyzer's partial-utterance length, 160 frames); cosine against the float32 PyTorch model.
- Silero VAD (the 16 kHz model inside the silero_vad wheel: SILERO_JIT, default
  /tmp/a16_sv/silero_vad/data/silero_vad.jit): its convolutional front end in PyTorch per 512-sample
  chunk (with the 64 samples of context, as the wheel does), its LSTMCell(128, 128) through our model
  file, its decoder (ReLU, 1x1 conv, sigmoid) in NumPy. On synthetic streams of speech-like bursts and
  noise: how many chunk decisions (probability > 0.5, Silero's threshold, and > 0.35, its end-of-speech
  threshold) flip against the float32 PyTorch cell.
- Random models (RANDOM_SHAPES, PyTorch's default initialisation) on N(0, 1) inputs and on inputs with a
  wide dynamic range: abs error of the outputs against float32 PyTorch, each int8 dtype converted without
  and with calibration data ("/cal": GPTQ weights).

    PYTHONPATH=. python tools/a16_accuracy.py [--utterances 24] [--vad-seconds 120] [--isa reference]
                                               [--only resemblyzer|silero|random]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

import numpy as np

SR = 16000
DTYPES = ("float32", "int8", "int8-dynamic", "int8-a16")


def voiced_audio(rng, seconds: float, f0_range=(90.0, 260.0)) -> np.ndarray:
    """Speech-like audio: a glottal-like harmonic series (amplitudes 1/k) of a gliding pitch (random walk
    plus vibrato) under three formants whose targets change syllable by syllable (a vowel sequence at
    3.5 .. 5.5 syllables/s), a syllabic envelope, and high-passed noise between the vowels (fricatives)."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    steps = rng.normal(0, 1, n // 160 + 2).cumsum()
    contour = np.interp(np.arange(n), np.arange(len(steps)) * 160, steps)
    lo, hi = f0_range
    f0 = (lo + (hi - lo) * (0.5 + 0.4 * np.tanh(contour / 8))) * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    rate = rng.uniform(3.5, 5.5)
    syllable = t * rate
    targets = np.array([[rng.uniform(300, 850), rng.uniform(850, 2300), rng.uniform(2300, 3200)]
                        for _ in range(int(syllable[-1]) + 2)])
    formants = [np.interp(syllable, np.arange(len(targets)), targets[:, j]) for j in range(3)]
    wav = np.zeros(n)
    for k in range(1, int(7800 / lo)):
        fk = k * f0
        gain = sum(1 / (1 + ((fk - f) / 90.0) ** 2) for f in formants)
        wav += np.where(fk < 7800, gain / k, 0) * np.sin(k * phase)
    vowels = np.sin(np.pi * (syllable % 1)) ** 2
    fricatives = np.sin(np.pi * (syllable % 1 + 0.5)) ** 8
    hiss = np.diff(rng.normal(0, 1, n), prepend=0)
    return wav * vowels + hiss * fricatives * 0.3 * np.abs(wav).max()


def normalize_dbfs(wav: np.ndarray, target=-30.0) -> np.ndarray:
    rms = np.sqrt(np.mean(wav ** 2))
    return wav * (10 ** (target / 20) / rms)


def slaney_mel(n_mels=40, n_fft=400, sr=SR) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) with its defaults (Slaney scale and area normalisation)."""
    def hz_to_mel(f):
        f = np.asarray(f, float)
        lin = f / (200.0 / 3)
        return np.where(f >= 1000, 15 + np.log(np.maximum(f, 1e-10) / 1000) / (np.log(6.4) / 27), lin)

    def mel_to_hz(m):
        m = np.asarray(m, float)
        return np.where(m >= 15, 1000 * np.exp((np.log(6.4) / 27) * (m - 15)), m * (200.0 / 3))

    fft_f = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]


def mel_energies(wav: np.ndarray) -> np.ndarray:
    """librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=400, hop_length=160, n_mels=40).T: centred
    frames (zero padding), periodic Hann window, power spectrum."""
    n_fft, hop = 400, 160
    y = np.pad(wav, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power @ slaney_mel().T).astype(np.float32)


def resemblyzer(args) -> dict:
    import torch

    import lstm_embed

    sd = torch.load(args.resemblyzer_pt, map_location="cpu", weights_only=False)["model_state"]
    lstm = torch.nn.LSTM(40, 256, 3)
    lstm.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("lstm.")})
    linear = torch.nn.Linear(256, 256)
    linear.load_state_dict({"weight": sd["linear.weight"], "bias": sd["linear.bias"]})
    rng = np.random.default_rng(args.seed)
    mels = []
    for u in range(args.utterances):
        low = u % 2 == 0  # lower and higher voices
        wav = normalize_dbfs(voiced_audio(rng, 1.62, (85.0, 180.0) if low else (160.0, 300.0)))
        mels.append(mel_energies(wav)[:160])
    with torch.no_grad():
        ref = torch.relu(linear(lstm(torch.from_numpy(np.stack(mels)).transpose(0, 1))[0][-1])).numpy()
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    out = {}
    for dtype in DTYPES:
        model = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(lstm, head=linear, head_activation="relu",
                                                                     dtype=dtype), isa=args.isa)
        emb = np.stack([model.stream().run(m)[-1] for m in mels]).astype(np.float64)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        cos = (emb * ref).sum(1)
        out[dtype] = (float(cos.min()), float(cos.mean()))
        print(f"resemblyzer {dtype:13s} cosine vs float32 PyTorch: min {cos.min():.5f} mean {cos.mean():.5f} "
              f"({len(mels)} utterances, mel range {np.min(mels):.2g} .. {np.max(mels):.3g})", flush=True)
    return out


def load_silero(path: str):
    """(net, cell, w_out, b_out) of the Silero VAD TorchScript at `path`: the whole network, its LSTMCell(128,
    128) with the real weights, and the decoder's output row and bias (p = sigmoid(relu(h) . w_out + b_out))."""
    import torch

    jit = torch.jit.load(path, map_location="cpu")
    sd = {k: v for k, v in jit.state_dict().items() if k.startswith("_model.decoder.")}
    cell = torch.nn.LSTMCell(128, 128)
    cell.load_state_dict({k.split("rnn.")[1]: v for k, v in sd.items() if ".rnn." in k})
    w_out = sd["_model.decoder.decoder.2.weight"].numpy()[0, :, 0].astype(np.float64)
    return jit._model, cell, w_out, float(sd["_model.decoder.decoder.2.bias"])


def vad_chunks(rng, seconds: float) -> np.ndarray:
    """Bursts of speech-like audio (1.5 .. 4 s, -22 .. -14 dBFS) between noise gaps (0.2 .. 1.5 s), as the
    576-sample chunks Silero reads (512 new samples each). Silero believes this synthetic speech only in
    part: many chunks sit near the 0.5 threshold (a hard test)."""
    pieces, total = [], 0
    while total < seconds * SR:
        n = int(rng.uniform(0.2, 1.5) * SR)
        pieces.append(rng.normal(0, 10 ** (rng.uniform(-4.5, -2.5)), n))
        speech = normalize_dbfs(voiced_audio(rng, rng.uniform(1.5, 4.0), (85.0, 180.0)), rng.uniform(-22, -14))
        pieces.append(speech + rng.normal(0, 10 ** (rng.uniform(-4.5, -3)), len(speech)))
        total += n + len(speech)
    wav = np.concatenate(pieces).astype(np.float32)
    chunks = len(wav) // 512
    padded = np.concatenate([np.zeros(64, np.float32), wav])
    return np.stack([padded[i * 512:i * 512 + 576] for i in range(chunks)])


def silero_features(net, x: np.ndarray) -> np.ndarray:
    """The encoder's 128 features of each chunk (what the LSTMCell reads)."""
    import torch

    with torch.no_grad():
        return net.encoder(net.run_extractors(torch.from_numpy(x))).squeeze(-1).numpy()


def silero_float_h(cell, feats: np.ndarray) -> np.ndarray:
    """h of the float32 PyTorch LSTMCell over the features, from a zero state."""
    import torch

    with torch.no_grad():
        h, c, hs = torch.zeros(1, 128), torch.zeros(1, 128), []
        for f in torch.from_numpy(feats):
            h, c = cell(f[None], (h, c))
            hs.append(h[0])
        return torch.stack(hs).numpy()


def vad_probs(hh: np.ndarray, w_out: np.ndarray, b_out: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(np.maximum(hh.astype(np.float64), 0) @ w_out + b_out)))


def silero(args) -> dict:
    import lstm_embed

    net, cell, w_out, b_out = load_silero(args.silero_jit)
    feats = silero_features(net, vad_chunks(np.random.default_rng(args.seed + 1), args.vad_seconds))
    ref_h = silero_float_h(cell, feats)

    def probs(hh):
        return vad_probs(hh, w_out, b_out)

    ref_p = probs(ref_h)
    # Silero's speech threshold 0.5 and its end-of-speech threshold 0.35 (get_speech_timestamps)
    thresholds = (0.5, 0.35)
    out = {}
    for dtype in DTYPES:
        model = lstm_embed.Model.from_bytes(lstm_embed.convert_torch(cell, dtype=dtype), isa=args.isa)
        p = probs(model.stream().run(feats))
        flips = [int(np.count_nonzero((p > th) != (ref_p > th))) for th in thresholds]
        out[dtype] = (flips, float(np.abs(p - ref_p).max()))
        line = ", ".join(f"{f} at threshold {th:.3f} ({np.mean(ref_p > th) * 100:.0f}% above, "
                         f"{np.count_nonzero(np.abs(ref_p - th) < 0.01)} within 0.01)"
                         for f, th in zip(flips, thresholds))
        print(f"silero-vad  {dtype:13s} decision flips of {len(feats)} chunks: {line}; "
              f"max |p - p_fp32| {np.abs(p - ref_p).max():.2e}", flush=True)
    return out


# (input, hidden, layers) of the random models; inputs N(0, 1) ("normal") or with a wide dynamic range
# ("wide": each feature a log-normal magnitude, e^N(0, 2), as mel energies are: values over ~6 decades)
RANDOM_SHAPES = ((16, 64, 1), (40, 128, 2), (64, 256, 1), (40, 256, 3))


def random_models(args) -> dict:
    """Every int8 dtype, with and without calibration data, on seeded random nn.LSTMs (PyTorch's default
    initialisation): mean and max abs error of the outputs against the float32 PyTorch model over held-out
    sequences; calibration on separate sequences from the same distribution."""
    import torch

    import lstm_embed

    out = {}
    for inputs in ("normal", "wide"):
        for inp, hidden, layers in RANDOM_SHAPES:
            torch.manual_seed(args.seed + hidden + layers)
            lstm = torch.nn.LSTM(inp, hidden, layers).eval()
            rng = np.random.default_rng(args.seed + inp)

            def draw(n):
                x = rng.standard_normal((n, 200, inp))
                if inputs == "wide":
                    x = np.exp(2.0 * x) * 0.05  # ~1e-5 .. 1e2, positive, like filterbank energies
                return x.astype(np.float32)

            calib, test = draw(4), draw(4)
            with torch.no_grad():
                want = lstm(torch.from_numpy(test).transpose(0, 1))[0].transpose(0, 1).numpy().astype(np.float64)
            for dtype in DTYPES[1:]:
                for cal in (None, calib):
                    data = lstm_embed.convert_torch(lstm, dtype=dtype, calibration=cal)
                    model = lstm_embed.Model.from_bytes(data, isa=args.isa)
                    got = np.stack([model.stream().run(t) for t in test]).astype(np.float64)
                    err = np.abs(got - want)
                    label = dtype + ("/cal" if cal is not None else "")
                    out[(inputs, inp, hidden, layers, label)] = (float(err.mean()), float(err.max()))
                    print(f"random {inputs:6s} I{inp}-H{hidden}-L{layers} {label:16s} abs error vs float32 "
                          f"PyTorch: mean {err.mean():.2e} max {err.max():.2e}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--utterances", type=int, default=24)
    ap.add_argument("--vad-seconds", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--isa", default="auto")
    ap.add_argument("--only", choices=("resemblyzer", "silero", "random"), action="append")
    ap.add_argument("--resemblyzer-pt", default=os.environ.get("RESEMBLYZER_PT", "/tmp/rz/resemblyzer/pretrained.pt"))
    ap.add_argument("--silero-jit", default=os.environ.get("SILERO_JIT", "/tmp/a16_sv/silero_vad/data/silero_vad.jit"))
    args = ap.parse_args(argv)
    logging.getLogger("lstm_embed").setLevel(logging.ERROR)
    for name, fn in (("resemblyzer", resemblyzer), ("silero", silero), ("random", random_models)):
        if not args.only or name in args.only:
            fn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
