"""Benchmarks: train several methods on one dataset under one protocol and write a leaderboard.

:data:`BENCHMARKS` declares every benchmark: its module (which defines ``DEFAULTS`` - the TrainConfig fields of
its quick and full runs - and ``benchmark(out_dir, data_dir, quick, fusions, train_cfg, seed, **options)``), a
one-line summary and the extra options the command line may pass. ``mmfuse benchmark`` reads this table (it
imports nothing heavy), and a contract test checks every entry against its module.

Two homes, one rule: a benchmark of the library's methods on a dataset lives here and runs as
``mmfuse benchmark NAME``; a script that measures the tool *from outside* (the real CLI in subprocesses, fault
injection, one process per run for its peak memory, an older source tree beside this one) lives in the
repository's ``benchmarks/`` folder, each with its protocol in its docstring and its command in BENCHMARKS.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchmarkInfo:
    """One declared benchmark."""

    module: str  # defines DEFAULTS and benchmark(...)
    summary: str  # shown by `mmfuse benchmark --help`
    options: tuple[str, ...] = ()  # extra keyword options of benchmark() that the CLI passes (e.g. "dropout")


BENCHMARKS: dict[str, BenchmarkInfo] = {
    "avmnist": BenchmarkInfo(
        "mmfuse.benchmarks.avmnist",
        "every fusion + 2 unimodal baselines on AV-MNIST (55k / 5k / 10k)",
        options=("jobs",),
    ),
    "avmnist_gan": BenchmarkInfo(
        "mmfuse.benchmarks.avmnist_gan", "conditional GAN vs VAE generating images from audio, Frechet distance"
    ),
    "avmnist_imputation": BenchmarkInfo(
        "mmfuse.benchmarks.avmnist_imputation",
        "image removed at test time: zero-fill vs learned token vs VAE vs GAN imputation, beside audio-only",
    ),
    "avmnist_retrieval": BenchmarkInfo(
        "mmfuse.benchmarks.avmnist_retrieval",
        "audio <-> image retrieval on AV-MNIST: CCA, deep CCA, InfoNCE, margin, subspace",
    ),
    "avmnist_robustness": BenchmarkInfo(
        "mmfuse.benchmarks.avmnist_robustness",
        "every fusion with and without modality dropout, missing-rate and noise sweeps",
        options=("dropout",),
    ),
    "avmnist_vae": BenchmarkInfo(
        "mmfuse.benchmarks.avmnist_vae", "product-of-experts VAE generating images from audio"
    ),
    "handwritten": BenchmarkInfo(
        "mmfuse.benchmarks.handwritten", "every fusion + each single view on the 6-view Handwritten set"
    ),
    "handwritten_cca": BenchmarkInfo(
        "mmfuse.benchmarks.handwritten_cca", "multi-view CCA embeddings + a linear classifier on Handwritten"
    ),
    "mosi": BenchmarkInfo("mmfuse.benchmarks.mosi", "CMU-MOSI sentiment regression, standard folds, six metrics"),
    "trust": BenchmarkInfo(
        "mmfuse.benchmarks.trust",
        "calibration, uncertainty, evidential fusion and Shapley values on Handwritten, 3 seeds",
    ),
    "trust_avmnist": BenchmarkInfo(
        "mmfuse.benchmarks.trust_avmnist", "the trust benchmark on the AV-MNIST 10k subset, 3 seeds"
    ),
}
