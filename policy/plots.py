"""PNG plots next to `reverie eval`'s JSON, for people who would rather look than read.

* ``success_per_planner.png``: success (95 % Wilson interval) of every evaluation JSON in the
  folder, one bar each (plain policy, or planner with K, dreamer and refinement), per task;
* ``<stem>_dream_error.png``: the evaluation's dream error against dream step: the executed plan's
  dream against what really happened and, with ``audit=true``, every candidate replayed in the
  simulator.

Figures are drawn with matplotlib's object API (no pyplot, no display needed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

SUCCESS_PNG = "success_per_planner.png"


def label(result: dict[str, Any]) -> str:
    """How an evaluation is named in the bar chart."""
    c = result.get("controller")
    if c is None:
        name = "plain policy"
    else:
        name = f"{c['planner']} K={c['k']} {c['dreamer']}"
        if c.get("refine"):
            name += f" refine {c['refine']}"
    if result.get("task_kwargs", {}).get("phrasing"):
        name += f" ({result['task_kwargs']['phrasing']})"
    if result.get("displace"):
        name += " displaced"
    return name


def _eval_results(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            r = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # not every JSON in a folder is an evaluation
        if isinstance(r, dict) and {"success_rate", "ci95", "task", "episodes"} <= r.keys():
            out.append((p, r))
    return out


def success_plot(folder: Path) -> Path | None:
    """Bars of every evaluation JSON in ``folder``; None when there is none."""
    results = _eval_results(folder)
    if not results:
        return None
    names = [label(r) for _, r in results]
    names = [f"{n}\n{p.stem}" if names.count(n) > 1 else n for n, (p, _) in zip(names, results, strict=True)]
    tasks = sorted({r["task"] for _, r in results})
    fig = Figure(figsize=(max(4.0, 1.3 * len(results) + 1), 3.6 + 0.3 * max(n.count("\n") for n in names)))
    ax = fig.add_subplot()
    rates = [r["success_rate"] for _, r in results]
    err = [[max(0.0, r["success_rate"] - r["ci95"][0]) for _, r in results],
           [max(0.0, r["ci95"][1] - r["success_rate"]) for _, r in results]]
    colours = [f"C{tasks.index(r['task'])}" for _, r in results]
    ax.bar(range(len(results)), rates, width=0.6, yerr=err, capsize=4, color=colours)
    for i, (_, r) in enumerate(results):
        ax.text(i + 0.32, rates[i], f"{rates[i]:.2f}\nn={r['episodes']}", ha="left", va="center", fontsize=7)
    ax.set_xticks(range(len(results)), names, rotation=20, ha="right", fontsize=7)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("success rate (95 % CI)")
    ax.set_title(f"success per planner: {', '.join(tasks)}")
    fig.tight_layout()
    out = folder / SUCCESS_PNG
    fig.savefig(out, dpi=120)
    return out


def dream_error_plot(result: dict[str, Any], out: Path) -> Path | None:
    """Dream error (cm) against dream step for one controller evaluation; None without one."""
    c = result.get("controller")
    if not c or not c.get("executed_dream_error", {}).get("steps"):
        return None
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    ex = c["executed_dream_error"]
    ax.plot(ex["steps"], ex["ee_cm"], "o-", color="C1", label="tool, executed plan")
    if any(v is not None for v in ex["object_cm"]):
        ax.plot(ex["steps"], [float("nan") if v is None else v for v in ex["object_cm"]], "s-", color="C0",
                label="objects, executed plan")
    fid = c.get("fidelity", {})
    if fid.get("ee_err_cm_by_step"):
        steps = range(1, len(fid["ee_err_cm_by_step"]) + 1)
        ax.plot(steps, fid["ee_err_cm_by_step"], "--", color="C1", label="tool, all candidates (replayed)")
        ax.plot(steps, fid["object_err_cm_by_step"], "--", color="C0",
                label="objects, all candidates (replayed)")
    ax.set_xlabel("dream step h (0.1 s each)")
    ax.set_ylabel("position error (cm)")
    ax.set_title(f"dream error against horizon: {result['task']}, {c['dreamer']} dreamer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    return out


def write_eval_plots(json_path: str | Path, result: dict[str, Any]) -> list[Path]:
    """The PNGs for an evaluation just written to ``json_path``."""
    json_path = Path(json_path)
    written = [success_plot(json_path.parent),
               dream_error_plot(result, json_path.with_name(f"{json_path.stem}_dream_error.png"))]
    return [p for p in written if p is not None]
