"""CMU-MOSI (Zadeh et al., IEEE Intelligent Systems 2016): 2,199 opinion utterances from 93 YouTube videos.

Files, in ``mosi/`` of the data folder (the layout of the public sources):

* the utterance-level features of bc-LSTM (Poria et al., ACL 2017), repository
  ``declare-lab/contextual-utterance-level-multimodal-sentiment-analysis`` at :data:`DECLARE_COMMIT`:
  ``{text,audio,video}/{m}_{train,test}0.csv`` (features, binary label last; text 100-d CNN, audio
  73-d openSMILE, video 100-d 3D-CNN), ``text_{train,test}.csv`` (first column = row of
  ``transcripts.csv``, which gives the utterance id ``<video>_<k>`` and the upper-case transcript);
* ``labels/CMU_MOSI_Opinion_Labels.csd``, the CMU-MultimodalSDK sentiment scores in [-3, 3] (HDF5, from
  ``worldreboot/audio-text-sentiment-analysis`` at :data:`LABELS_COMMIT`), ``labels/standard_folds.json``
  (the SDK's standard folds, :data:`STANDARD_FOLDS`) and ``labels/mosi_segment_labels.csv``, one row
  per segment joining score, standard fold and bc-LSTM split. When that CSV is absent it is derived
  from the ``.csd`` (needs ``h5py``) and checked against its known SHA-256.

Two protocols:

* ``"original"``: the feature files' own speaker-independent split, 1,447 train / 752 test utterances
  (62 / 31 videos), binary labels (1 = positive); validation = ``val_fraction`` of the training videos
  (seeded), so it stays speaker-independent. Classification, 2 classes.
* ``"standard"``: the CMU-MultimodalSDK folds, 1,284 / 229 / 686 segments (52 / 10 / 31 videos),
  regression of the sentiment score. The bc-LSTM text and video *features* were learned on the
  original training part, which overlaps the standard test videos, so they leak test information
  here: the default modalities are the audio features and the raw transcripts (``dataset.texts``, or
  the ``"transcript"`` modality when a ``text_embedder`` is given); asking for ``"text"`` or ``"video"``
  warns.

Every file is checked against its SHA-256 at each load (about 10 MB in all).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfuse.data.base import DatasetSpec, Splits, TensorMultimodalDataset
from mmfuse.data.download import advice, check_digest, data_root, ensure_file
from mmfuse.errors import ConfigError, DataError

FOLDER = "mosi"
DECLARE_COMMIT = "3874cf25a7fbda75df27ee65b297afa781d7f32c"
DECLARE_URL = (
    "https://raw.githubusercontent.com/declare-lab/contextual-utterance-level-multimodal-sentiment-analysis/"
    f"{DECLARE_COMMIT}/data/"
)
LABELS_COMMIT = "40df4d8e7ed1b120e2a36286d96b3b6968e00b13"
CSD_URL = (
    f"https://raw.githubusercontent.com/worldreboot/audio-text-sentiment-analysis/{LABELS_COMMIT}/"
    "cmumosi/CMU_MOSI_Opinion_Labels.csd"
)
FEATURE_FILES = {  # path under mosi/ -> SHA-256 (files of DECLARE_URL)
    "transcripts.csv": "e7689e6d70720addd2a6b316419d245a68839c32b014ff426c406063ee777466",
    "text_train.csv": "73770b6302ad0f7a51f4eddcae6788efde4d0b6802e09f78249d5b538d1c1d67",
    "text_test.csv": "f3b735070bf07ceff7a6ef6c8f4c32757e988de484e35bd6d38b2aecef851a59",
    "text/text_train0.csv": "cc327045db6cc361a08b4037b97bb24de4ddb5efb381468c4835cc4a60674668",
    "text/text_test0.csv": "a343e22272919d1384c2075dbcdd5fef5aa9f9366b0552a83f7c3147b64b047a",
    "audio/audio_train0.csv": "5435398a54664e7b00304587dc59ae84a438852be033c2a2fba779588624a2a1",
    "audio/audio_test0.csv": "ddd17eeefd3d951d51d4e2ef8a0d132652d8161e1886f71eb7262b7a14bffff6",
    "video/video_train0.csv": "b6efc0413132d627efd06f67f1706830e775e90af9a75696f535c48dbc73f12f",
    "video/video_test0.csv": "cab836253d81100f59d533fa2ff65cd53c486be3ec9fd82203c5e25a7a77265f",
}
CSD_SHA256 = "aef5f4617cdb067cc7606bb798eb6452c3de45f0f21cb3427be33c4d8c7fe852"
FOLDS_SHA256 = (
    "ca4fcdbb91353aa90289da64796713362b040507b8845155c091b45cf2641265"  # json.dumps(STANDARD_FOLDS, indent=1)
)
LABELS_SHA256 = "0c3cb20d411d71d4dc51de349d49d3d1ee2e8a8a02a02388851d3740c4d2c6ec"
FEATURES = {
    "text": ("textcnn_", 100),
    "audio": ("audio_", 73),
    "video": ("video_", 100),
}  # modality -> (table prefix, dim)
# CMU-MultimodalSDK standard folds of CMU-MOSI (mmsdk cmu_mosi_std_folds): video ids
STANDARD_FOLDS: dict[str, list[str]] = {
    "train": "2iD-tVS8NPw 8d-gEyoeBzc Qr1Ca94K55A Ci-AH39fi3Y 8qrpnFRGt2A Bfr499ggo-0 "
    "QN9ZIUWUXsY 9T9Hf74oK10 7JsX8y1ysxY "
    "1iG0909rllw Oz06ZWiO20M BioHAh1qJAQ 9c67fiY0wGQ Iu2PFX3z_1s Nzq88NnDkEk "
    "Clx4VXItLTE 9J25DZhivz8 Af8D0E4ZXaw TvyZBvOMOTc "
    "W8NXH0Djyww 8OtFthrtaJM 0h-zjBukYpk Vj1wYRQjB-o GWuJjcEuzt8 BI97DNYfe5I "
    "PZ-lDQFboO8 1DmNV9C1hbY OQvJTdtJ2H4 I5y0__X72p0 "
    "9qR7uwkblbs G6GlGvlkxAQ 6_0THN4chvY Njd1F0vZSm4 BvYR0L6f2Ig 03bSnISJMiM "
    "Dg_0XKD0Mf4 5W7Z1C_fDaE VbQk4H8hgr0 G-xst2euQUc "
    "MLal-t_vJPM BXuRRbG0Ugk LSi-o-IrDMs Jkswaaud0hk 2WGyTLYerpo 6Egk_28TtTM "
    "Sqr0AcuoNnk POKffnXeBds 73jzhE8R1TQ OtBXNcAL_lE "
    "HEsqda8_d0Q VCslbP0mgZI IumbAb8q2dM".split(),
    "valid": "WKA5OygbEKI c5xsKMxpXnc atnd_PF-Lbs bvLlb-M3UXU bOL9jKpeJRs _dI--eQ6qVU "
    "ZAIRrfG22O0 X3j2zQgwYgE aiEXnCPZubE ZUXBRvtny7o".split(),
    "test": "tmZoasNr4rU zhpQhgha_KU lXPQBPVc5Cw iiK8YX8oH1E tStelxIAHjw nzpVDcQ0ywM "
    "etzxEpPuc6I cW1FSBF59ik d6hH302o4v8 "
    "k5Y_838nuGo pLTX3ipuDJI jUzDDGyPkXU f_pcplsH_V0 yvsjCA6Y5Fc nbWiPyCm4g0 "
    "rnaNMUZpvvg wMbj6ajWbic cM3Yna7AavY yDtzw_Y-7RU "
    "vyB00TXsimI dq3Nf_lMPnE phBUpBr1hSo d3_k5Xpfmik v0zCBqDeKcE tIrG4oNLFzE "
    "fvVhgmXxadc ob23OKe5a9Q cXypl4FnoZo vvZ4IcEtiZc "
    "f9O3YtZ2VfI c7UH_rxdZv4".split(),
}


def _file(root: Path, rel: str, url: str, sha256: str, download: bool) -> Path:
    sub, _, name = f"{FOLDER}/{rel}".rpartition("/")
    path = ensure_file(root, sub, name, url, sha256, "sha256", download)
    check_digest(path, sha256, "sha256", root, FOLDER)
    return path


def read_utterances(data_dir: str | Path | None = None, download: bool = True):
    """The bc-LSTM utterances as a DataFrame in file order (train rows, then test rows).

    Returns:
        ``pandas.DataFrame`` with columns ``segment_id, video_id, text, bclstm_split, binary`` and the
        features ``textcnn_0..99, audio_0..72, video_0..99``.
    """
    import pandas as pd

    root = data_root(data_dir)
    paths = {rel: _file(root, rel, DECLARE_URL + rel, sha, download) for rel, sha in FEATURE_FILES.items()}
    transcripts = pd.read_csv(
        paths["transcripts.csv"], header=None, names=["segment_id", "text", "video_number", "binary"]
    )
    parts = []
    for split in ("train", "test"):
        rows = pd.read_csv(paths[f"text_{split}.csv"], header=None)[0].to_numpy()
        part = transcripts.iloc[rows][["segment_id", "text", "binary"]].reset_index(drop=True)
        part.insert(1, "video_id", part["segment_id"].str.rsplit("_", n=1).str[0])
        part.insert(3, "bclstm_split", split)
        for m, (prefix, dim) in FEATURES.items():
            values = pd.read_csv(paths[f"{m}/{m}_{split}0.csv"], header=None).to_numpy(np.float32)[:, :dim]
            part = pd.concat([part, pd.DataFrame(values, columns=[f"{prefix}{j}" for j in range(dim)])], axis=1)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def segment_labels_csv(scores: dict[str, tuple[np.ndarray, np.ndarray]], bclstm_split: dict[str, str]) -> bytes:
    """The bytes of ``labels/mosi_segment_labels.csv`` from the ``.csd`` content.

    Args:
        scores: ``{video_id: (sentiment (n,), intervals (n, 2) in seconds)}``; row ``k`` is segment ``<video>_<k+1>``.
        bclstm_split: ``{segment_id: "train" | "test"}`` of the bc-LSTM files.
    """
    fold = {v: name for name, videos in STANDARD_FOLDS.items() for v in videos}
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)  # \r\n line ends, as in the published file
    writer.writerow(
        ["segment_id", "video_id", "segment_index", "sentiment", "start_s", "end_s", "standard_split", "bclstm_split"]
    )
    for vid in sorted(scores):
        sentiment, intervals = scores[vid]
        for k in range(len(sentiment)):
            sid = f"{vid}_{k + 1}"
            writer.writerow(
                [
                    sid,
                    vid,
                    k + 1,
                    f"{sentiment[k]:.4f}",
                    f"{intervals[k, 0]:.4f}",
                    f"{intervals[k, 1]:.4f}",
                    fold[vid],
                    bclstm_split[sid],
                ]
            )
    return buf.getvalue().encode()


def _read_csd(path: Path, root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        import h5py
    except ImportError as exc:
        raise DataError(
            f"{root / FOLDER / 'labels' / 'mosi_segment_labels.csv'} is missing and "
            f"deriving it from {path.name} needs h5py; "
            f"install h5py, or {advice(root, FOLDER)}."
        ) from exc
    with h5py.File(path, "r") as f:
        data = f["Opinion Segment Labels"]["data"]
        return {v: (data[v]["features"][:].reshape(-1), data[v]["intervals"][:]) for v in data}


def _write_checked(path: Path, content: bytes, sha256: str, root: Path) -> None:
    if hashlib.sha256(content).hexdigest() != sha256:
        raise DataError(
            f"Deriving {path} gave content other than the published file's, so it was "
            f"not written; {advice(root, FOLDER)}."
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.replace(tmp, path)


def segment_labels(data_dir: str | Path | None = None, download: bool = True):
    """``labels/mosi_segment_labels.csv`` as a DataFrame (2,199 rows), derived from the ``.csd`` when absent."""
    import pandas as pd

    root = data_root(data_dir)
    path = root / FOLDER / "labels" / "mosi_segment_labels.csv"
    if not path.is_file():
        if not download:
            raise DataError(f"{path} is missing and downloads are off; {advice(root, FOLDER)}.")
        csd = _file(root, "labels/CMU_MOSI_Opinion_Labels.csd", CSD_URL, CSD_SHA256, download)
        utt = read_utterances(data_dir, download)
        _write_checked(
            path,
            segment_labels_csv(_read_csd(csd, root), dict(zip(utt["segment_id"], utt["bclstm_split"]))),
            LABELS_SHA256,
            root,
        )
        folds = path.parent / "standard_folds.json"
        if not folds.is_file():
            _write_checked(folds, json.dumps(STANDARD_FOLDS, indent=1).encode(), FOLDS_SHA256, root)
    check_digest(path, LABELS_SHA256, "sha256", root, FOLDER)
    return pd.read_csv(path)


def _carve_videos(videos: Sequence[str], fraction: float, seed: int) -> set[str]:
    unique = sorted(set(videos))
    n_val = max(1, int(round(fraction * len(unique))))
    return set(np.random.default_rng(seed).choice(unique, n_val, replace=False).tolist())


def load_mosi_table(
    data_dir: str | Path | None = None,
    protocol: str = "standard",
    features: Sequence[str] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    download: bool = True,
):
    """CMU-MOSI as one table, the input of the table pipeline (``mmfuse fit table.csv``).

    Args:
        protocol: ``"standard"`` (SDK folds, sentiment score) or ``"original"`` (bc-LSTM split, binary label).
        features: feature groups among ``"text"`` (columns ``textcnn_*``), ``"audio"``, ``"video"``; default
            ``("audio",)`` for ``"standard"`` (the others leak test information there) and all three for ``"original"``.
        val_fraction, seed: share of training videos carved for validation in ``"original"`` (seeded).

    Returns:
        ``pandas.DataFrame``: ``segment_id, video_id, text`` (raw transcript), the feature columns,
        ``label`` (float score in [-3, 3] or int 0/1) and ``fold`` in ``train / val / test``.
    """
    if protocol not in ("standard", "original"):
        raise ConfigError(f"Unknown MOSI protocol {protocol!r}; use 'standard' or 'original'.")
    features = tuple(features) if features is not None else (("audio",) if protocol == "standard" else tuple(FEATURES))
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ConfigError(f"Unknown MOSI feature group(s) {unknown}; valid: {sorted(FEATURES)}.")
    utt = read_utterances(data_dir, download)
    if protocol == "standard":
        labels = segment_labels(data_dir, download)
        table = labels[["segment_id", "sentiment", "standard_split"]].merge(
            utt, on="segment_id", how="left", validate="one_to_one"
        )
        table["label"] = table["sentiment"].astype(np.float32)
        table["fold"] = table["standard_split"].replace({"valid": "val"})
    else:
        if not 0 < val_fraction < 1:
            raise ConfigError(f"Option val_fraction={val_fraction} must lie in (0, 1).")
        table = utt.copy()
        val_videos = _carve_videos(table.loc[table["bclstm_split"] == "train", "video_id"], val_fraction, seed)
        table["label"] = table["binary"].astype(np.int64)
        table["fold"] = np.where(table["video_id"].isin(val_videos), "val", table["bclstm_split"])
    columns = [c for m in features for c in (f"{FEATURES[m][0]}{j}" for j in range(FEATURES[m][1]))]
    return table[["segment_id", "video_id", "text", *columns, "label", "fold"]].reset_index(drop=True)


class MOSIDataset(TensorMultimodalDataset):
    """A MOSI split; besides the tensors, ``texts``, ``segment_ids`` and ``video_ids`` (lists of str) per item."""

    def __init__(
        self, inputs: dict[str, Any], target: Any, texts: list[str], segment_ids: list[str], video_ids: list[str]
    ) -> None:
        super().__init__(inputs, target)
        self.texts, self.segment_ids, self.video_ids = texts, segment_ids, video_ids


def load_mosi(
    data_dir: str | Path | None = None,
    protocol: str = "standard",
    modalities: Sequence[str] | None = None,
    text_embedder: Callable[[list[str]], Any] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    download: bool = True,
) -> Splits:
    """CMU-MOSI train / validation / test splits as tensors.

    Args:
        data_dir: folder holding ``mosi/`` (default: ``$MMFUSE_DATA_DIR``, else ``~/.cache/mmfuse/data``).
        protocol: ``"standard"`` (regression, 1,284 / 229 / 686) or ``"original"`` (binary, 1,447 train
            minus the validation videos / 752 test).
        modalities: among ``"text"`` (100-d CNN features), ``"audio"`` (73-d), ``"video"`` (100-d) and
            ``"transcript"`` (``text_embedder`` applied to the raw transcripts). Default: ``("audio",)``,
            plus ``"transcript"`` when an embedder is given, for ``"standard"``; ``("text", "audio", "video")``
            for ``"original"``.
        text_embedder: maps a list of transcripts to an array ``(N, D)`` (e.g. a sentence encoder's ``encode``).
        val_fraction, seed: validation carve by video for ``"original"``.

    Returns:
        :class:`Splits` of :class:`MOSIDataset`; every feature vector standardised with training
        statistics, ``(x - mean_train) / std_train``; target float32 score (standard) or long 0/1 (original).
    """
    if modalities is None:
        modalities = (
            (("transcript",) if text_embedder is not None else ()) + ("audio",)
            if protocol == "standard"
            else tuple(FEATURES)
        )
    modalities = tuple(modalities)
    valid = {*FEATURES, "transcript"}
    if not modalities or set(modalities) - valid:
        raise ConfigError(f"Option modalities={list(modalities)} must be a non-empty subset of {sorted(valid)}.")
    if "transcript" in modalities and text_embedder is None:
        raise ConfigError(
            "Modality 'transcript' needs text_embedder (a function from a list of str to an (N, D) array)."
        )
    if protocol == "standard" and {"text", "video"} & set(modalities):
        warnings.warn(
            "MOSI text/video features were learned on the original training videos, "
            "which include standard test videos; "
            "standard-fold results with them are optimistic.",
            UserWarning,
            stacklevel=2,
        )
    features = [m for m in modalities if m in FEATURES]
    table = load_mosi_table(data_dir, protocol, features, val_fraction, seed, download)
    arrays = {m: table[[f"{FEATURES[m][0]}{j}" for j in range(FEATURES[m][1])]].to_numpy(np.float32) for m in features}
    if "transcript" in modalities and text_embedder is not None:  # (an embedder is required above)
        arrays["transcript"] = np.asarray(text_embedder(table["text"].tolist()), np.float32).reshape(len(table), -1)
    train = (table["fold"] == "train").to_numpy()
    stats = {m: (x[train].mean(0), np.where(x[train].std(0) > 0, x[train].std(0), 1.0)) for m, x in arrays.items()}
    target = table["label"].to_numpy(np.float32 if protocol == "standard" else np.int64)
    datasets = {}
    for fold in ("train", "val", "test"):
        rows = (table["fold"] == fold).to_numpy()
        inputs = {m: ((x[rows] - stats[m][0]) / stats[m][1]).astype(np.float32) for m, x in arrays.items()}
        part = table[rows]
        datasets[fold] = MOSIDataset(
            inputs, target[rows], part["text"].tolist(), part["segment_id"].tolist(), part["video_id"].tolist()
        )
    standard = protocol == "standard"
    spec = DatasetSpec(
        name="mosi",  # the registry name, so load_dataset(spec.name) finds it again
        task="regression" if standard else "classification",
        num_outputs=1 if standard else 2,
        encoders={m: {"name": "mlp", "in_dim": int(x.shape[1]), "input_norm": False} for m, x in arrays.items()},
        class_names=[] if standard else ["negative", "positive"],
        metric="mae" if standard else "accuracy",
    )
    return Splits(datasets["train"], datasets["val"], datasets["test"], spec=spec)
