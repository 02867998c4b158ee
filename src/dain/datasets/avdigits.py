"""AV-digits: spoken digits (FSDD audio) paired with 8x8 handwritten digits (UCI optdigits) by class.

Sources: Free Spoken Digit Dataset (Jakobovski et al., 3000 wav clips at 8 kHz, 6 speakers, CC BY-SA 4.0) and
the scikit-learn copy of the UCI optdigits test set (1797 grey 8x8 images, BSD-3 package). The pairing is
SYNTHETIC: each clip gets a random image of the same digit (seeded), drawn from an image pool disjoint across
train/val/test, so the two modalities share only the class. It is an AV-MNIST-like toy task.

Modalities: ``audio`` = log-mel spectrogram ``[T=n_frames, n_mels]`` (32 ms Hann window, 25 ms hop, default
32 x 40; clips are zero-padded at the end or centre-cropped; ``steps`` marks real frames), ``image`` =
``[1, 8, 8]``. Both z-scored with train statistics. Protocols: ``official`` (default) = FSDD's split
(take index 0-4 -> test, 300 clips) with validation carved stratified from train; ``stratified`` = seeded
70/15/15; ``speaker`` = leave-one-speaker-out (``test_speaker``), validation stratified from the rest.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from dain.data.paths import find_data_dir
from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, standardize_, stratified_split
from dain.errors import ConfigError, DataNotFoundError, DataValidationError

SOURCE = (
    "Free Spoken Digit Dataset (CC BY-SA 4.0) + UCI optdigits via scikit-learn (BSD-3); synthetic class-level pairing"
)
SR = 8000


def mel_filterbank(n_mels: int, n_fft: int, sr: int = SR, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular HTK-mel filterbank ``[n_mels, n_fft // 2 + 1]``."""
    fmax = fmax or sr / 2
    mel = np.linspace(2595 * np.log10(1 + fmin / 700), 2595 * np.log10(1 + fmax / 700), n_mels + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, c, hi = hz[i], hz[i + 1], hz[i + 2]
        up = (freqs - lo) / max(c - lo, 1e-9)
        down = (hi - freqs) / max(hi - c, 1e-9)
        fb[i] = np.clip(np.minimum(up, down), 0, None)
    return fb


def log_mel(wave: np.ndarray, n_mels: int = 40, n_fft: int = 256, hop: int = 200) -> np.ndarray:
    """Log-mel spectrogram ``[frames, n_mels]`` of a mono float waveform (scipy STFT, Hann window)."""
    from scipy.signal import stft

    if len(wave) < n_fft:
        wave = np.pad(wave, (0, n_fft - len(wave)))
    _, _, z = stft(wave, fs=SR, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary=None, padded=True)
    power = np.abs(z) ** 2  # [freq, frames]
    return np.log(mel_filterbank(n_mels, n_fft) @ power + 1e-6).T.astype(np.float32)


def fit_frames(spec: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre-crop or end-pad to ``n_frames``; returns (frames, step mask)."""
    t = len(spec)
    if t >= n_frames:
        s = (t - n_frames) // 2
        return spec[s : s + n_frames], np.ones(n_frames, dtype=bool)
    out = np.zeros((n_frames, spec.shape[1]), dtype=np.float32)
    out[:t] = spec
    steps = np.zeros(n_frames, dtype=bool)
    steps[:t] = True
    return out, steps


def read_digits_images(d: Path) -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits.csv.gz -> (images [N, 1, 8, 8] float32 in 0..16, labels [N])."""
    path = d / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        arr = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 65:
        raise DataValidationError(f"{path}: expected 65 columns (64 pixels + label), got {arr.shape}")
    return arr[:, :64].reshape(-1, 1, 8, 8), arr[:, 64].astype(np.int64)


def _pair_images(y: np.ndarray, splits: dict[str, np.ndarray], img_y: np.ndarray, seed: int) -> np.ndarray:
    """For each clip, the index of a same-class image from a split-specific image pool (seeded)."""
    rng = np.random.default_rng(seed + 7919)
    pools = stratified_split(img_y, (0.7, 0.15, 0.15), seed=seed + 1)
    out = np.empty(len(y), dtype=np.int64)
    for s, idx in splits.items():
        pool = pools[s]
        for c in np.unique(y[idx]):
            rows = idx[y[idx] == c]
            cand = pool[img_y[pool] == c]
            if len(cand) == 0:
                cand = np.flatnonzero(img_y == c)
            reps = int(np.ceil(len(rows) / len(cand)))
            seq = np.concatenate([rng.permutation(cand) for _ in range(reps)])[: len(rows)]
            out[rows] = seq
    return out


def _digits_dir(root: str | Path | None, fs: Path) -> Path:
    """The ``sklearn_digits`` folder holding digits.csv.gz: under the data root, else beside ``fsdd/``."""
    try:
        return find_data_dir("sklearn_digits", root, ("digits.csv.gz",))
    except DataNotFoundError:
        return find_data_dir(
            "sklearn_digits",
            fs.parent,
            ("digits.csv.gz",),
            hint="Copy scikit-learn's sklearn/datasets/data/digits.csv.gz into a sklearn_digits/ folder.",
        )


def locate_avdigits(root: str | Path | None = None) -> Path:
    """The ``fsdd`` folder, once every file the loader reads is found: .wav clips in ``fsdd/recordings`` and
    ``sklearn_digits/digits.csv.gz``; else DataNotFoundError."""
    fs = find_data_dir(
        "fsdd",
        root,
        ("recordings",),
        hint="Get it with `python -m dain.datasets.download fsdd DIR` (github Jakobovski/free-spoken-digit-dataset).",
    )
    _digits_dir(root, fs)
    if next((fs / "recordings").glob("*.wav"), None) is None:
        raise DataNotFoundError(f"no .wav files in {fs / 'recordings'}")
    return fs


@register_dataset(
    DatasetInfo(
        name="avdigits",
        task="multiclass",
        modalities={"audio": [32, 40], "image": [1, 8, 8]},
        description="Spoken digit (FSDD log-mel) + handwritten 8x8 digit, synthetic pairing by class",
        source=SOURCE,
        subdir="fsdd",
        required=("recordings",),
        n_samples=3000,
        extras={"protocols": ["official", "stratified", "speaker"], "synthetic_pairing": True},
        locate=locate_avdigits,
    )
)
def load_avdigits(
    root: str | None = None,
    seed: int = 0,
    protocol: str = "official",
    n_frames: int = 32,
    n_mels: int = 40,
    test_speaker: str = "theo",
    modalities: list[str] | None = None,
) -> MultimodalDataset:
    """Load AV-digits. ``root`` may hold ``fsdd/`` and ``sklearn_digits/`` (``modalities`` keeps a subset)."""
    fs = locate_avdigits(root)
    dg = _digits_dir(root, fs)
    from scipy.io import wavfile

    files = sorted((fs / "recordings").glob("*.wav"))
    feats, steps, y, speaker, take, names = [], [], [], [], [], []
    for f in files:
        parts = f.stem.split("_")
        if len(parts) != 3 or not parts[0].isdigit():
            raise DataValidationError(f"{f}: expected a name like 3_george_12.wav")
        sr, wave = wavfile.read(f)
        if sr != SR:
            raise DataValidationError(f"{f}: sample rate {sr}, expected {SR}")
        w = wave.astype(np.float32)
        if w.ndim > 1:
            w = w.mean(1)
        w = w / 32768.0 if wave.dtype == np.int16 else w
        spec, st = fit_frames(log_mel(w, n_mels=n_mels), n_frames)
        feats.append(spec)
        steps.append(st)
        y.append(int(parts[0]))
        speaker.append(parts[1])
        take.append(int(parts[2]))
        names.append(f.stem)
    y_arr = np.asarray(y, dtype=np.int64)
    take_arr, spk = np.asarray(take), np.asarray(speaker)
    if protocol == "official":
        tr_all = np.flatnonzero(take_arr >= 5)
        test = np.flatnonzero(take_arr < 5)
    elif protocol == "speaker":
        if test_speaker not in set(speaker):
            raise ConfigError(f"avdigits: unknown test_speaker {test_speaker!r}; speakers: {sorted(set(speaker))}")
        tr_all = np.flatnonzero(spk != test_speaker)
        test = np.flatnonzero(spk == test_speaker)
    elif protocol == "stratified":
        tr_all = test = np.array([], dtype=np.int64)
    else:
        raise ConfigError(f"avdigits has no protocol {protocol!r}; protocols: official, stratified, speaker")
    if protocol == "stratified":
        splits = stratified_split(y_arr, (0.7, 0.15, 0.15), seed=seed)
    else:
        inner = stratified_split(y_arr[tr_all], (0.85, 0.15, 0.0), seed=seed)
        splits = {
            "train": np.sort(tr_all[inner["train"]]),
            "val": np.sort(tr_all[np.concatenate([inner["val"], inner["test"]])]),
            "test": np.sort(test),
        }
    images, img_y = read_digits_images(dg)
    pick = _pair_images(y_arr, splits, img_y, seed)
    names_all = ["audio", "image"]
    keep = list(modalities) if modalities else names_all
    bad = [m for m in keep if m not in names_all]
    if bad or not keep:
        raise ConfigError(f"avdigits has no modality {bad}; modalities: {names_all}")
    keep = [m for m in names_all if m in keep]
    arrays = {"audio": np.stack(feats), "image": images[pick].astype(np.float32)}
    shapes = {"audio": ("sequence", (n_frames, n_mels)), "image": ("image", (1, 8, 8))}
    spec = DatasetSpec(
        name="avdigits",
        task="multiclass",
        num_outputs=10,
        modalities=tuple(ModalitySpec(m, *shapes[m]) for m in keep),
        class_names=tuple(str(i) for i in range(10)),
    )
    data = MultimodalDataset(
        spec=spec,
        inputs={m: arrays[m] for m in keep},
        mask=np.ones((len(y_arr), len(keep)), dtype=bool),
        target=y_arr,
        splits=splits,
        steps={"audio": np.stack(steps)} if "audio" in keep else {},
        ids=np.asarray(names),
        info={
            "source": SOURCE,
            "where": str(fs),
            "protocol": protocol,
            "split_seed": seed,
            "pairing": "synthetic: random same-class image, image pools disjoint across splits (seeded)",
            "image_index": pick,
            "normalisation": "z-score, train only",
        },
    )
    standardize_(data)
    return data
