"""DET curves as PNG: P_miss against P_fa on normal-deviate (probit) axes."""

from __future__ import annotations

import numpy as np

from sidkd.metrics.rates import det_points, equal_error_rate

__all__ = ["plot_det"]

_TICKS = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8]


def plot_det(systems, path: str, title: str = "DET", limits: tuple[float, float] = (0.0005, 0.6)) -> None:
    """``systems``: list of (name, target_scores, nontarget_scores); one curve each, EER marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    low, high = limits
    # Rates of exactly 0 or 1 are at ±inf on a probit axis: pin them just outside the frame.
    clip = (norm.ppf(low) - 1.0, norm.ppf(high) + 1.0)
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    for name, target, nontarget in systems:
        points = det_points(target, nontarget)
        eer, _ = equal_error_rate(target, nontarget)
        x = np.clip(norm.ppf(points.p_fa), *clip)
        y = np.clip(norm.ppf(points.p_miss), *clip)
        (line,) = ax.plot(x, y, label=f"{name} (EER {100 * eer:.2f}%)", linewidth=1.3)
        ax.plot([norm.ppf(eer)], [norm.ppf(eer)], "o", color=line.get_color(), markersize=5)
    ticks = [t for t in _TICKS if low <= t <= high]
    labels = [f"{100 * t:g}" for t in ticks]
    ax.set_xticks(norm.ppf(ticks), labels)
    ax.set_yticks(norm.ppf(ticks), labels)
    ax.set_xlim(norm.ppf(low), norm.ppf(high))
    ax.set_ylim(norm.ppf(low), norm.ppf(high))
    ax.plot([norm.ppf(low), norm.ppf(high)], [norm.ppf(low), norm.ppf(high)], ":", color="grey", linewidth=0.8)
    ax.set_xlabel("False alarm probability (%)")
    ax.set_ylabel("Miss probability (%)")
    ax.set_title(title)
    ax.grid(True, linestyle=":", linewidth=0.5)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
