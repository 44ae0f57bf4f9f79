"""Small PNG charts embedded in asset metadata as Markdown images."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # No display on servers; must run before pyplot is imported.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _markdown_image(figure, title: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![{title}](data:image/png;base64,{encoded})"


def objective_curve(trace: np.ndarray, steps: np.ndarray) -> str:
    """Return a Markdown image of the objective after every half-step."""
    figure, axis = plt.subplots(figsize=(6, 3))
    positions = np.arange(len(trace))
    axis.plot(positions, trace, color="tab:blue", linewidth=1.2)
    is_e_step = np.asarray(steps) == "e-step"
    axis.scatter(positions[is_e_step], trace[is_e_step], s=8, color="tab:blue", label="E-step")
    axis.scatter(positions[~is_e_step], trace[~is_e_step], s=8, color="tab:orange", label="M-step")
    axis.set_xlabel("half-step")
    axis.set_ylabel("objective F")
    axis.legend(loc="lower right", fontsize=8)
    return _markdown_image(figure, "objective")


def cluster_sizes(sizes: np.ndarray, names: list[str] | None = None) -> str:
    """Return a Markdown bar chart of documents per cluster, with the uniform share marked."""
    figure, axis = plt.subplots(figsize=(6, 3))
    labels = names if names is not None else [str(index) for index in range(len(sizes))]
    axis.bar(labels, sizes, color="tab:green")
    axis.axhline(sizes.sum() / len(sizes), color="black", linewidth=0.8, linestyle="--", label="uniform")
    axis.set_xlabel("cluster")
    axis.set_ylabel("documents")
    axis.tick_params(axis="x", labelsize=7, rotation=90)
    axis.legend(fontsize=8)
    return _markdown_image(figure, "cluster sizes")


def weight_bars(weights: np.ndarray, names: list[str]) -> str:
    """Return a Markdown horizontal bar chart of mixture weights per domain."""
    figure, axis = plt.subplots(figsize=(6, max(2.5, 0.22 * len(weights))))
    positions = np.arange(len(weights))
    axis.barh(positions, weights, color="tab:purple")
    axis.set_yticks(positions, labels=[name[:30] for name in names], fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel("weight")
    return _markdown_image(figure, "mixture weights")
