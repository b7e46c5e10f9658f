"""What a comparison leaves in experiments/results/<name>/: tables, curves, pictures, environment.

table.md / table.csv (one row per method), fid_curves.png, samples_<method>.png,
swap_grid.png, sg2_vs_sg3.md, environment.txt and a copy of the config.
"""

import csv
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from cstylegan.blend import class_swap_ws
from cstylegan.image_grid import save_grid, to_uint8
from cstylegan.seeds import parse_seeds, seed_z
from experiments.spec import SpecError

REPO = Path(__file__).resolve().parents[1]


def table_rows(methods: list, class_names: list) -> list:
    """One dict per method: per-class FID, the summary metrics, and what the method cost."""
    rows = []
    for method in methods:
        final = method.final()
        row = {"method": method.name, "cfg": method.arch}
        row.update({f"fid_{name}": final[f"fid_per_class/{name}"] for name in class_names})
        row.update(fid_per_class_mean=final["fid_per_class_mean"], fid=final["fid"], kid=final["kid"],
                   class_acc=final["class_acc_mean"], kimg=method.kimg, wall_time_s=round(method.wall_s),
                   models=method.models_trained, G_params=method.parameters, peak_mem_gb=method.peak_mem_gb,
                   notes=method.notes)
        rows.append(row)
    return rows


def _format(column: str, value) -> str:
    if column == "wall_time_s":
        return _duration(value)
    if column == "kid":
        return f"{value:.4f}"
    if column == "class_acc":
        return f"{value:.3f}"
    if column == "G_params":
        return f"{value / 1e6:.2f} M"
    if column == "peak_mem_gb":
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.1f}" if column.startswith("fid") else f"{value:g}"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


LOWER_IS_BETTER = ("fid", "kid")


def write_tables(rows: list, out: Path) -> None:
    """table.csv (raw numbers) and table.md (rounded, the best value of each metric in bold)."""
    columns = list(rows[0])
    with open(out / "table.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    best = {}
    for column in columns:
        if column.startswith(LOWER_IS_BETTER):
            best[column] = min(row[column] for row in rows)
        elif column == "class_acc":
            best[column] = max(row[column] for row in rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"**{_format(c, row[c])}**" if c in best and row[c] == best[c] and len(rows) > 1
                 else _format(c, row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "table.md").write_text("\n".join(lines) + "\n")


def plot_curves(methods: list, path: Path) -> None:
    """Mean per-class FID against the total kimg each method had trained at that point."""
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    for method in methods:
        kimgs = [point.kimg for point in method.points]
        fids = [method.results[f"{kimg:g}"]["fid_per_class_mean"] for kimg in kimgs]
        axes.plot(kimgs, fids, marker="o" if len(kimgs) > 1 else "*", markersize=5 if len(kimgs) > 1 else 11,
                  label=method.name)
    axes.set_xlabel("training kimg (all models of the method together)")
    axes.set_ylabel("mean per-class FID (lower is better)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def _latents(seeds: list, z_dim: int, device) -> torch.Tensor:
    return torch.from_numpy(np.stack([seed_z(seed, z_dim) for seed in seeds])).float().to(device)


def save_samples(method, class_names: list, seeds: list, device, path: Path) -> None:
    """One row per class, one column per seed, the same seeds for every method (psi 1, as measured)."""
    generator = method.points[-1].build(device)
    z = _latents(seeds, generator.z_dim, device)
    rows = []
    with torch.no_grad():
        for k in range(len(class_names)):
            c = torch.zeros([len(seeds), len(class_names)], device=device)
            c[:, k] = 1
            rows.append(generator(z, c).permute(0, 2, 3, 1).cpu().numpy())
    save_grid(np.concatenate(rows), path, columns=len(seeds), row_labels=class_names)


def save_swap_grid(method, class_names: list, seed: int, swap_layer: int, device, path: Path) -> None:
    """Inside one conditional model: rows = content class (first ws), columns = style class (the rest)."""
    G = method.points[-1].build(device).G
    if not 1 <= swap_layer <= G.num_ws - 1:
        raise SpecError(f"swap_layer {swap_layer} is outside 1..{G.num_ws - 1} for {method.name}")
    z = _latents([seed], G.z_dim, device)
    eye = torch.eye(len(class_names), device=device)
    tiles = []
    with torch.no_grad():
        for content in range(len(class_names)):
            for style in range(len(class_names)):
                ws = class_swap_ws(G, z, eye[content : content + 1], eye[style : style + 1], swap_layer)
                tiles.append(to_uint8(G.synthesis(ws, noise_mode="const")))
    save_grid(np.concatenate(tiles), path, columns=len(class_names), row_labels=class_names,
              column_labels=[f"style {name}" for name in class_names])


def write_sg2_vs_sg3(methods: list, path: Path) -> None:
    """The conditional models side by side: cost, speed and quality, and the FID at equal kimg."""
    conditional = [m for m in methods if m.models_trained == 1]
    lines = [f"# Conditional StyleGAN2 vs StyleGAN3 ({path.parent.name})", ""]
    if not any(m.arch.startswith("stylegan3") for m in conditional):
        path.write_text("\n".join(lines + ["This config trains no StyleGAN3 model.", ""]))
        return
    shared_kimg = min(m.points[-1].kimg for m in conditional)
    lines += ["| method | cfg | kimg | wall time | train img/s | G params | peak mem GB | FID | mean per-class FID "
              f"| KID | class consistency | mean per-class FID at {shared_kimg:g} kimg |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in conditional:
        final = m.final()
        nearest = min(m.points, key=lambda point: abs(point.kimg - shared_kimg))
        at_shared = m.results[f"{nearest.kimg:g}"]["fid_per_class_mean"]
        lines.append(f"| {m.name} | {m.arch} | {m.kimg:g} | {_duration(m.wall_s)} | {m.kimg * 1000 / m.wall_s:.1f} "
                     f"| {m.parameters / 1e6:.2f} M | {m.peak_mem_gb:.1f} | {final['fid']:.1f} "
                     f"| {final['fid_per_class_mean']:.1f} | {final['kid']:.4f} | {final['class_acc_mean']:.3f} "
                     f"| {at_shared:.1f} (at {nearest.kimg:g}) |")
    best = min(conditional, key=lambda m: m.final()["fid_per_class_mean"])
    fastest = max(conditional, key=lambda m: m.kimg / m.wall_s)
    lines += ["", f"Lowest final mean per-class FID: {best.name}. Fastest to train: {fastest.name}. "
              "Wall time includes snapshots and grids; FID at equal kimg compares the curves where both have a point.",
              ""]
    path.write_text("\n".join(lines))


def write_environment(spec_path: Path, device, seconds: dict, path: Path) -> None:
    """Which code, machine and library versions made these numbers."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")] if Path("/proc/cpuinfo").exists() else [platform.processor()]
        hardware = f"{models[0] if models else 'CPU'}, {torch.get_num_threads()} torch threads"
    lines = [
        f"config: {spec_path}",
        f"finished: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"commit: {commit}{dirty}",
        f"device: {device} ({hardware})",
        f"python: {sys.version.split()[0]}  torch: {torch.__version__}  numpy: {np.__version__}",
        f"platform: {platform.platform()}",
        *(f"{name}: {_duration(value)}" for name, value in seconds.items()),
    ]
    path.write_text("\n".join(lines) + "\n")


def write_report(spec, spec_path: Path, methods: list, class_names: list, device, seconds: dict, out: Path, say) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec_path, out / "config.yaml")
    write_tables(table_rows(methods, class_names), out)
    plot_curves(methods, out / "fid_curves.png")
    seeds = parse_seeds(spec.sample_seeds)
    for method in methods:
        save_samples(method, class_names, seeds, device, out / f"samples_{method.name}.png")
    conditional = [m for m in methods if m.models_trained == 1]
    swap_source = next((m for m in conditional if not m.arch.startswith("stylegan3")), None) or \
        (conditional[0] if conditional else None)
    if swap_source is not None:
        save_swap_grid(swap_source, class_names, seeds[0], spec.swap_layer, device, out / "swap_grid.png")
    write_sg2_vs_sg3(methods, out / "sg2_vs_sg3.md")
    write_environment(spec_path, device, seconds, out / "environment.txt")
    say(f"Wrote {out}/: table.md, table.csv, fid_curves.png, samples_*.png"
        + (", swap_grid.png" if swap_source else "") + ", sg2_vs_sg3.md, environment.txt")
