"""Matplotlib figures of the report, returned as PNG bytes (Agg backend, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return buf.getvalue()


def _styles(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One colour per base method (``x`` and ``x+variant`` share it: dashed = plain, solid = variant), from tab20."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    bases = list(dict.fromkeys(n.split("+")[0] for n in names))
    return {
        n: {
            "color": cmap(bases.index(n.split("+")[0]) % 20),
            "linestyle": "-" if "+" in n else "--",
            "marker": "os^vD<>ph*"[bases.index(n.split("+")[0]) % 10],
            "markersize": 3,
        }
        for n in names
    }


def bar_chart(
    labels: Sequence[str], values: Sequence[float], xlabel: str, title: str, grey: Sequence[bool] | None = None
) -> bytes:
    """Horizontal bars, largest first; ``grey`` marks baselines."""
    plt = _plt()
    order = np.argsort(values)
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(labels) + 1.3))
    colors = ["#9e9e9e" if grey is not None and grey[i] else "#1f77b4" for i in order]
    ax.barh([labels[i] for i in order], [values[i] for i in order], color=colors)
    for k, i in enumerate(order):
        ax.text(values[i], k, f" {values[i]:.3f}", va="center", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    lo, hi = float(np.min(values)), float(np.max(values))
    left = max(0.0, lo - 0.1 * max(hi - lo, 0.1)) if lo >= 0 else lo * 1.1
    ax.set_xlim(left, hi + 0.15 * max(hi - left, 1e-3))  # room for the value labels
    return _png(fig)


def curves(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str, title: str
) -> bytes:
    """One line per method: ``{name: (x, y)}``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    styles = _styles(list(series))
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name, linewidth=1.4, **styles[name])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2 if len(series) > 8 else 1, loc="best")
    return _png(fig)


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str, title: str) -> bytes:
    """Bars per group (method), one bar per series (condition)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(7.5, 0.5 * len(groups) + 2), 4.2))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=name, color=PALETTE[i % len(PALETTE)])
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def confusion_matrix(cm: np.ndarray, class_names: Sequence[str], title: str) -> bytes:
    """Row-normalised confusion matrix with the counts written in the cells."""
    plt = _plt()
    n = cm.shape[0]
    fig, ax = plt.subplots(figsize=(0.45 * n + 2.5, 0.45 * n + 2.0))
    norm = cm / np.clip(cm.sum(1, keepdims=True), 1, None)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(int(cm[i, j])),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    names = list(class_names) if len(class_names) == n else [str(i) for i in range(n)]
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, fontsize=7)
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def scatter(pred: np.ndarray, target: np.ndarray, title: str) -> bytes:
    """Predicted vs true values (regression) with the identity line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.scatter(target, pred, s=6, alpha=0.5)
    lo, hi = float(min(target.min(), pred.min())), float(max(target.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def learning_curves(histories: Mapping[str, list[dict[str, float]]], keys: Sequence[str], title: str) -> bytes:
    """One panel per metric key, one line per model, x = epoch."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    styles = _styles(list(histories))
    for ax, key in zip(axes[0], keys):
        for name, hist in histories.items():
            pts = [(h.get("epoch", j), h[key]) for j, h in enumerate(hist) if key in h]
            if pts:
                ax.plot(*zip(*pts), label=name, linewidth=1.2, **styles[name])
        ax.set_xlabel("epoch")
        ax.set_title(key, fontsize=9)
        ax.grid(alpha=0.3)
    if len(histories) <= 12:
        axes[0][-1].legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def reliability_diagram(series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], title: str) -> bytes:
    """Accuracy against confidence per bin (``{name: (mean confidence, accuracy, count)}``); the diagonal is perfect
    calibration."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--")
    for name, (conf, acc, counts) in series.items():
        keep = counts > 0
        ax.plot(conf[keep], acc[keep], marker="o", markersize=3, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _png(fig)
