"""Pictures: training curves, the camera-pair time-gap distributions, rank lists."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageOps

from .artifacts import atomic_output
from .errors import warning
from .train_log import history_of

GREEN, RED = (40, 170, 60), (210, 40, 40)


def draw_curves(rows, path) -> None:
    """train.jpg as the original: loss and top-1 error per epoch, train (blue), val (red).

    Args:
        rows: the rows of train_log.csv (:class:`streid.train_log.EpochRow`), in epoch order.
    """
    history = history_of(rows)
    fig = Figure(figsize=(6.4, 4.8))
    for ax, key, title in zip(
        fig.subplots(1, 2), ("loss", "err"), ("loss", "top1err"), strict=True
    ):
        ax.set_title(title)
        for phase, style in (("train", "bo-"), ("val", "ro-")):
            values = history[phase][key]
            if values:
                ax.plot(range(len(values)), values, style, label=phase)
        ax.legend()
    with atomic_output(path, suffix=".jpg") as tmp:
        fig.savefig(tmp, format="jpg")


def plot_st_distribution(
    distribution, smoothed, interval: float, sigma: float, path, unit="frames", cameras=None
) -> None:
    """One panel per ordered camera pair: the raw histogram of step 4 and its Parzen smoothing.

    Args:
        distribution: (C, C, B) normalised histograms; ``[a][b]`` counts identities seen in
            camera a after camera b.
        smoothed: the same, smoothed as step 5 does.
        interval: frames per bin.
        sigma: the smoothing's sigma in bins (for the title).
        path: the PNG to write.
        unit: what the times count (``dataset.yaml``'s ``unit``).
        cameras: the camera labels by id (a manifest's ``dataset.yaml``), or None: the ids.
    """
    name = (cameras or {}).get
    used = np.flatnonzero(distribution.sum(axis=(1, 2)) + distribution.sum(axis=(0, 2)))
    if used.size == 0:
        used = np.arange(distribution.shape[0])
    # Show both curves as the probability per display bin of about sigma bins: the raw
    # histogram is a few spikes per pair, the smoothed one spreads each over ~6 sigma bins.
    num_bins = distribution.shape[2]
    width = max(1, min(int(round(sigma)), num_bins))  # no wider than the histograms
    mass = distribution.sum(axis=(0, 1))
    if mass.sum() > 0:  # up to the gap that holds 98% of all pairs' mass, plus 3 sigma
        last = int(np.searchsorted(np.cumsum(mass) / mass.sum(), 0.98)) + 3 * width
    else:
        last = num_bins
    shown = -(-min(num_bins, last) // width)  # display bins
    pad = shown * width - num_bins

    def coarse(h):
        h = np.pad(h, (0, max(0, pad)))[: shown * width]
        return h.reshape(shown, width).sum(axis=1)

    edges = np.arange(shown + 1) * width * interval
    centres = (edges[:-1] + edges[1:]) / 2
    n = len(used)
    fig = Figure(figsize=(2.2 * n, 1.6 * n), layout="constrained")
    axes = fig.subplots(n, n, sharex=True, squeeze=False)
    for r, a in enumerate(used):
        for c, b in enumerate(used):
            ax = axes[r, c]
            ax.tick_params(labelsize=6)
            if a == b:
                ax.set_axis_off()
                continue
            ax.stairs(coarse(distribution[a, b]), edges, fill=True, color="0.75")
            ax.plot(centres, coarse(smoothed[a, b]), color="tab:blue", lw=1.2)
            ax.set_title(f"cam {name(a + 1, a + 1)} after cam {name(b + 1, b + 1)}", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel(f"time gap (1000 {unit})", fontsize=7)
        ax.xaxis.set_major_formatter(lambda value, _: f"{value / 1000:g}")
    fig.suptitle(
        f"Time gaps of the same person between cameras (share per {width * interval:g} "
        f"{unit}): histogram (grey), Parzen smoothing with sigma {sigma:g} bins (blue)",
        fontsize=9,
    )
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)


def placeholder_tile(path: str, size: tuple[int, int]) -> Image.Image:
    """A grey tile with the file's name, for an image that cannot be opened (a placeholder
    file, as step 4 allows, or a damaged one)."""
    tile = Image.new("RGB", size, (160, 160, 160))
    draw = ImageDraw.Draw(tile)
    name = os.path.basename(str(path))
    chars = max(1, size[0] // 6)  # the default font is about 6 pixels wide
    for row, start in enumerate(range(0, min(len(name), 8 * chars), chars)):
        draw.text((2, 2 + 11 * row), name[start : start + chars], fill="black")
    return tile


def _tile(path: str, size: tuple[int, int], border=None, unreadable=None) -> Image.Image:
    """An image resized to ``size`` (width, height), with a coloured border if given; a
    :func:`placeholder_tile` if it cannot be read (its path then added to ``unreadable``)."""
    try:
        with Image.open(path) as img:
            tile = img.convert("RGB").resize(size)
    except (OSError, ValueError, Image.DecompressionBombError):  # not an image, or cut short
        tile = placeholder_tile(path, size)
        if unreadable is not None:
            unreadable.append(path)
    if border is not None:
        tile = ImageOps.expand(tile.resize((size[0] - 8, size[1] - 8)), border=4, fill=border)
    return tile


def plot_rank_lists(rows, path, top: int = 10, size=(64, 128)) -> None:
    """A picture of rank lists, one query per line, several rankings side by side.

    Args:
        rows: list of (query image path, {ranking title: [(gallery image path, is good),
            ...]}), the gallery lists in rank order.
        path: the PNG (or JPEG) to write.
        top: gallery images shown per ranking.
        size: (width, height) of each image.
    """
    titles = list(rows[0][1])
    w, h = size
    gap, header = w // 2, 18
    width = w + gap + len(titles) * (top * w + gap)
    canvas = Image.new("RGB", (width, header + len(rows) * (h + 6)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 3), "query", fill="black")
    for t, title in enumerate(titles):
        draw.text((w + gap + t * (top * w + gap) + 4, 3), title, fill="black")
    unreadable = []
    for r, (query, rankings) in enumerate(rows):
        y = header + r * (h + 6)
        canvas.paste(_tile(query, size, unreadable=unreadable), (0, y))
        for t, title in enumerate(titles):
            x0 = w + gap + t * (top * w + gap)
            for k, (image, good) in enumerate(rankings[title][:top]):
                tile = _tile(image, size, GREEN if good else RED, unreadable)
                canvas.paste(tile, (x0 + k * w, y))
    if unreadable:
        unique = sorted(set(map(str, unreadable)))
        warning(
            f"{len(unique)} images could not be read as images (placeholder files?), e.g. "
            f"{unique[0]}: drawn as grey tiles with their names"
        )
    with atomic_output(path, suffix=os.path.splitext(str(path))[1] or ".png") as tmp:
        canvas.save(tmp)


def plot_figure4(points, path, title: str, paper: dict, cmc_ranks: int = 20) -> None:
    """The paper's Figure 4 laid out in five panels, with its published points.

    Args:
        points: :class:`streid.figure4.Point` of panels a-e.
        paper: {(panel, curve): published rank-1 in %}, drawn as crosses at rank 1.
    """
    fig = Figure(figsize=(15, 8.5), layout="constrained")
    axes = dict(zip("abcdef", fig.subplots(2, 3).ravel(), strict=True))
    styles = {"st": "tab:green", "visual": "tab:blue", "joint": "tab:red", "product": "tab:orange"}
    names = {"st": "ST stream only", "visual": "visual stream only", "joint": "joint metric",
             "product": "Eqn. 5 baseline (product)"}  # fmt: skip
    for panel in "ab":
        ax = axes[panel]
        for p in (p for p in points if p.panel == panel):
            ranks = np.arange(1, cmc_ranks + 1)
            cmc = 100 * p.metrics.cmc[:cmc_ranks]
            ax.plot(ranks[: len(cmc)], cmc, color=styles[p.curve], label=names[p.curve])
            if (panel, p.curve) in paper:
                ax.plot(1, paper[panel, p.curve], "x", color=styles[p.curve], ms=9, mew=2)
        ax.set(xlabel="rank", ylabel="CMC (%)", xticks=[1, 5, 10, 15, 20])
        ax.set_title(f"({panel}) " + ("the two streams" if panel == "a" else "fusions"))
        ax.legend(fontsize=8, title="x: the paper's rank-1 (Duke)", title_fontsize=7)
    for panel, label in (("c", "lambda"), ("d", "gamma")):
        ax = axes[panel]
        for curve, colour in ((f"{label}0", "tab:blue"), (f"{label}1", "tab:green")):
            ps = [p for p in points if p.panel == panel and p.curve == curve]
            ax.plot([p.value for p in ps], [100 * p.metrics.cmc[0] for p in ps], "o-",
                    color=colour, ms=3, label=curve)  # fmt: skip
        ax.axhline(paper.get(("a", "joint"), np.nan), color="0.6", ls=":", lw=1,
                   label="the paper's joint rank-1 (Duke)")  # fmt: skip
        ax.set(xlabel=label, ylabel="rank-1 (%)", title=f"({panel}) rank-1 against {label}")
        ax.legend(fontsize=8)
    ax = axes["e"]
    ps = [p for p in points if p.panel == "e"]
    sigmas = [p.value for p in ps]
    ax.plot(sigmas, [100 * p.metrics.cmc[0] for p in ps], "o-", ms=3, label="rank-1")
    ax.plot(sigmas, [100 * p.metrics.mAP for p in ps], "s-", ms=3, label="mAP")
    ax.set_xscale("log")
    ax.set(xlabel="Parzen sigma (bins)", ylabel="%", title="(e) beyond the paper: sigma")
    ax.legend(fontsize=8)
    axes["f"].set_axis_off()
    axes["f"].text(0, 0.5, title, fontsize=9, va="center", wrap=True)
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
