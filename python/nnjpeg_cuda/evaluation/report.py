"""Reports of an evaluation: a markdown table, a JSON file, and two PNG plots (matplotlib, Agg backend).

- ``results.json``: the meta data (number of images, seed, attacks, versions) and one record per
  (defence, threat, attack), as returned by :func:`nnjpeg_cuda.evaluation.evaluate`.
- ``report.md``: clean accuracy, then one table per threat model (rows: defences; columns: attacks).
- ``accuracy_vs_eps.png``: accuracy against the L-inf budget, one line per defence, one panel per
  (threat model, attack).
- ``quality_levels.png``: clean and robust accuracy per quality level for single-level defences.

Re-render the markdown and the plots of a finished run from its JSON (no attack is re-run):
``python -m nnjpeg_cuda.evaluation DIR``.

Example:
    >>> from nnjpeg_cuda.evaluation import report
    >>> res = {"meta": {"n": 2, "slow_n": 2, "seed": 0}, "records": [
    ...     {"defence": "none", "kind": "none", "quality": None, "threat": "oblivious", "threat_label": "clean",
    ...      "attack": "clean", "eps": None, "eps_label": "clean", "n": 2, "correct": 2, "accuracy": 1.0}]}
    >>> print(report.markdown(res).splitlines()[0])
    # Robustness evaluation
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Union

__all__ = ["markdown", "write_json", "plot_accuracy_vs_eps", "plot_quality_levels", "write_report", "main"]

_ATTACK_ORDER = {"clean": 0, "fgsm": 1, "pgd": 2, "cw": 3, "deepfool": 4}
_ATTACK_NAMES = {"fgsm": "FGSM", "pgd": "PGD", "cw": "C&W-L2", "deepfool": "DeepFool"}


def _pct(v: Optional[float]) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _column_key(r: Dict):
    return (_ATTACK_ORDER.get(r["attack"], 9), r["eps"] or 0.0)


def _column_label(r: Dict, meta: Dict) -> str:
    name = _ATTACK_NAMES.get(r["attack"], r["attack"])
    if r["eps"] is not None:
        return f"{name} {r['eps_label'].split('@')[1]}"
    return f"{name} (n={r['n']})" if r["n"] != meta.get("n") else name


def _threat_order(label: str):
    return (label != "oblivious", label.count(","), label)


def _table(rows: List[Dict], meta: Dict, clean: Dict[str, float], defence_order: List[str]) -> List[str]:
    cols = sorted({_column_key(r): r for r in rows}.items())
    header = ["defence", "clean"] + [_column_label(r, meta) for _, r in cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    by = {(r["defence"], _column_key(r)): r for r in rows}
    for name in [d for d in defence_order if any(r["defence"] == d for r in rows)]:
        cells = [name, _pct(clean.get(name))]
        for key, _ in cols:
            r = by.get((name, key))
            if r is None:
                cells.append("")
                continue
            cell = _pct(r["accuracy"])
            if r["eps"] is None and r.get("l2_median_fooled") is not None:
                cell += f" (L2 {r['l2_median_fooled']:.2f})"
            cells.append(cell)
        eot = next((r.get("eot") for r in rows if r["defence"] == name and r.get("eot")), None)
        if eot:
            cells[0] += f" (EOT {eot})"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


_THREAT_TEXT = {
    "oblivious": "crafted on the undefended base model, classified by the defence (the paper's setting)",
    "bpda": "gradients through the round trip as the identity (BPDA)",
    "ste": "straight-through rounding through the exact linear parts",
    "smooth": "smooth rounding round(t) + (t - round(t))^3 in the forward and backward pass",
}


def markdown(results: Dict) -> str:
    """The report as markdown: settings, then accuracy (%) per defence for each threat model.

    Args:
        results: the dict returned by :func:`nnjpeg_cuda.evaluation.evaluate` (or read from JSON).

    Returns:
        Markdown text.
    """
    meta, records = results["meta"], results["records"]
    clean = {r["defence"]: r["accuracy"] for r in records if r["attack"] == "clean"}
    order = [r["defence"] for r in records if r["attack"] == "clean"]
    out = ["# Robustness evaluation", ""]
    out.append(f"{meta['n']} test images (seed {meta['seed']})"
               + (f"; C&W and DeepFool on the first {meta['slow_n']}" if meta.get("slow_n", meta["n"]) != meta["n"]
                  else "") + ". Accuracy in %; L-inf budgets on the 0..255 scale.")
    if meta.get("attacks"):
        settings = ", ".join(f"{a['name']}" + (f" steps={a['steps']}" if a.get("steps") else "")
                             for a in {a["name"]: a for a in meta["attacks"]}.values())
        text = f"Attacks (Adversarial Robustness Toolbox): {settings}."
        if any(a["name"] in ("cw", "deepfool") for a in meta["attacks"]):
            text += (" C&W-L2 and DeepFool are minimum-norm attacks (no budget): the cell shows the accuracy and, "
                     "in brackets, the median L2 size (pixel scale 0..1) of the perturbations that fooled the "
                     "defence.")
        out.append(text)
    if meta.get("device"):
        out.append(f"Device {meta['device']}, {meta.get('threads', '?')} threads, torch {meta.get('torch', '?')}, "
                   f"nnjpeg_cuda {meta.get('nnjpeg_cuda', '?')}"
                   + (f", model {meta['model']}" if meta.get("model") else "")
                   + (f"; {meta['seconds']:.0f} s wall" if meta.get("seconds") else "") + ".")
    out.append("")
    labels = sorted({r["threat_label"] for r in records if r["attack"] != "clean"}, key=_threat_order)
    for label in labels:
        rows = [r for r in records if r["threat_label"] == label and r["attack"] != "clean"]
        if label == "oblivious":
            title, text = "Oblivious (gray-box)", _THREAT_TEXT["oblivious"]
        else:
            parts = label[len("adaptive["):-1].split(",")
            title = f"Adaptive (white-box), {label}"
            text = "the attacker differentiates the whole defence; " + _THREAT_TEXT.get(parts[0], parts[0])
            if "members" in parts:
                text += "; ensembles: one attack per member, an image counts as robust only if the ensemble " \
                        "resists all of them"
            else:
                text += "; ensembles attacked as one network through their summed logits"
            if any(r.get("eot") for r in rows):
                text += "; randomised defences through expectation over transformation (EOT)"
        out += [f"## {title}", "", text[0].upper() + text[1:] + ".", ""]
        out += _table(rows, meta, clean, order)
        out.append("")
    return "\n".join(out)


def write_json(results: Dict, path: Union[str, Path]) -> Path:
    """Write ``results`` as indented JSON; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_vs_eps(results: Dict, path: Union[str, Path]) -> Optional[Path]:
    """Accuracy against the L-inf budget (0 = clean), one line per defence, one panel per (threat, attack).

    Adaptive panels use the summed-logits, BPDA variant (``adaptive[bpda]``) when present.

    Returns:
        The path written, or None when there is no budgeted attack in ``results``.
    """
    records = results["records"]
    clean = {r["defence"]: r["accuracy"] for r in records if r["attack"] == "clean"}
    eps_rows = [r for r in records if r["eps"] is not None]
    if not eps_rows:
        return None
    labels = sorted({r["threat_label"] for r in eps_rows}, key=_threat_order)
    labels = [lb for lb in labels if lb in ("oblivious", "adaptive[bpda]")] or labels[:2]
    attacks = sorted({r["attack"] for r in eps_rows}, key=lambda a: _ATTACK_ORDER.get(a, 9))
    plt = _plt()
    fig, axes = plt.subplots(len(labels), len(attacks), figsize=(4.2 * len(attacks), 3.4 * len(labels)),
                             squeeze=False, sharey=True)
    order = [r["defence"] for r in records if r["attack"] == "clean"]
    colours = plt.get_cmap("tab20").colors if len(order) > 10 else plt.get_cmap("tab10").colors
    style = {name: dict(color=colours[k % len(colours)], ls="-" if k % 2 == 0 else "--")
             for k, name in enumerate(order)}
    for i, label in enumerate(labels):
        for j, attack in enumerate(attacks):
            ax = axes[i][j]
            for name in order:
                pts = sorted((r["eps"] * 255, r["accuracy"]) for r in eps_rows
                             if r["defence"] == name and r["attack"] == attack and r["threat_label"] == label)
                if not pts:
                    continue
                xs, ys = zip(*([(0.0, clean[name])] + pts))
                ax.plot(xs, [100 * v for v in ys], marker="o", ms=3, label=name, **style[name])
            ax.set_title(f"{_ATTACK_NAMES.get(attack, attack)}, {label}", fontsize=9)
            ax.set_xlabel("eps (x/255, L-inf)")
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel("accuracy (%)")
    handles, names = axes[0][0].get_legend_handles_labels()
    for row in axes:
        for ax in row:
            for h, n in zip(*ax.get_legend_handles_labels()):
                if n not in names:
                    handles.append(h)
                    names.append(n)
    fig.legend(handles, names, loc="center right", fontsize=8)
    meta = results["meta"]
    fig.suptitle(f"Accuracy vs budget ({meta['n']} images, seed {meta['seed']})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.8, 0.95))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_quality_levels(results: Dict, path: Union[str, Path]) -> Optional[Path]:
    """Clean and robust accuracy (strongest PGD budget, oblivious and adaptive BPDA) per quality level.

    Uses the single-level defences (standard JPEG, NN table) present at two or more qualities.

    Returns:
        The path written, or None when fewer than two quality levels of one family were evaluated.
    """
    records = results["records"]
    single = [r for r in records if r.get("quality") is not None and r["kind"] in ("jpeg", "nn", "custom")]
    kinds = sorted({r["kind"] for r in single if len({s["quality"] for s in single if s["kind"] == r["kind"]}) > 1})
    if not kinds:
        return None
    pgd = [r for r in single if r["attack"] == "pgd"] or [r for r in single if r["eps"] is not None]
    eps = max((r["eps"] for r in pgd), default=None)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.4, 4.0))
    colours = {"jpeg": "tab:blue", "nn": "tab:red", "custom": "tab:green"}
    curves = [("clean", lambda r: r["attack"] == "clean", "-")]
    if eps is not None:
        attack = pgd[0]["attack"]
        for label, style in (("oblivious", "--"), ("adaptive[bpda]", ":")):
            curves.append((f"{attack.upper()} {round(eps * 255)}/255 {label}",
                           lambda r, lb=label: r["attack"] == attack and r["eps"] == eps and r["threat_label"] == lb,
                           style))
    for kind in kinds:
        for name, pick, style in curves:
            pts = sorted((r["quality"], r["accuracy"]) for r in single if r["kind"] == kind and pick(r))
            if pts:
                ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], style, marker="o", ms=3,
                        color=colours.get(kind), label=f"{kind} table: {name}")
    ax.set_xlabel("quality")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    meta = results["meta"]
    ax.set_title(f"Clean vs robust accuracy per quality ({meta['n']} images, seed {meta['seed']})", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(results: Dict, out_dir: Union[str, Path], command: Optional[str] = None) -> Dict[str, Path]:
    """Write ``results.json``, ``report.md`` and the plots into ``out_dir`` (created if needed).

    Args:
        results: from :func:`nnjpeg_cuda.evaluation.evaluate`.
        out_dir: output folder.
        command: the command line that produced the results (recorded in the report).

    Returns:
        ``{"json": ..., "markdown": ..., "accuracy_vs_eps": ..., "quality_levels": ...}`` (plots only
        when written).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if command:
        results = {**results, "meta": {**results["meta"], "command": command}}
    files = {"json": write_json(results, out / "results.json")}
    text = markdown(results)
    if command:
        text = text.replace("\n\n", f"\n\nCommand: `{command}`\n\n", 1)
    plots = {"accuracy_vs_eps": plot_accuracy_vs_eps(results, out / "accuracy_vs_eps.png"),
             "quality_levels": plot_quality_levels(results, out / "quality_levels.png")}
    for key, p in plots.items():
        if p is not None:
            files[key] = p
            text += f"\n![{key}]({p.name})\n"
    md = out / "report.md"
    md.write_text(text)
    files["markdown"] = md
    return files


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m nnjpeg_cuda.evaluation DIR [DIR ...]``: rewrite report.md and the plots from results.json."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nnjpeg_cuda.evaluation",
                                     description="Re-render report.md and the plots from DIR/results.json.")
    parser.add_argument("dirs", nargs="+", metavar="DIR")
    args = parser.parse_args(argv)
    for d in args.dirs:
        path = Path(d) / "results.json"
        if not path.is_file():
            parser.error(f"{path} not found")
        results = json.loads(path.read_text())
        for f in write_report(results, d, results["meta"].get("command")).values():
            print(f"wrote {f}")
    return 0
