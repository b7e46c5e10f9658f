"""What a comparison leaves in experiments/results/<name>/, and how it is merged.

Each finished method writes its own files: methods/<method>.json (its table row, its curve,
its final metrics, what it cost, the config it was run with and the machine) and
samples_<method>.png; the conditional StyleGAN2 model also writes swap_grid.png and
<method>_G_ema.pt, its final generator alone in float16; each conditional StyleGAN3 model
motion_<method>.png (motion.py). The summary (table.md / table.csv, fid_curves.png,
sg2_vs_sg3.md / .csv / .png, class_shares.md / .csv where a method trained on a share of
a class, environment.txt and a copy of the config) is then drawn again from every
methods/*.json present, and the records `references` quotes, so units run in
separate sittings, on separate machines, merge into one table.
"""

import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from cstylegan.generation.drawer import Drawer
from cstylegan.generation.image_grid import save_grid
from cstylegan.generation.seeds import parse_seeds, z_from_seeds
from cstylegan.snapshots.checkpoint import export_generator, load_snapshot
from experiments.motion import motion_strip
from experiments.shares import write_class_shares
from experiments.spec import SpecError

REPO = Path(__file__).resolve().parents[1]
LOWER_IS_BETTER = ("fid", "kid")


def plain(values):
    """`values` as JSON gives it back (tuples become lists), so stored and current settings compare equal."""
    return json.loads(json.dumps(values))


def record_path(out: Path, method: str) -> Path:
    return out / "methods" / f"{method}.json"


def read_records(spec, out: Path) -> list:
    """The committed record of each of the config's methods that has one, in table order."""
    paths = [record_path(out, name) for name in spec.method_names()]
    return [json.loads(path.read_text()) for path in paths if path.is_file()]


def read_references(spec, results: Path) -> list:
    """The records spec.references quotes ('config/method' under `results`), named so; one
    measured with other shared settings than this config's is refused by name."""
    quoted = []
    for reference in spec.references:
        config, method = reference.split("/")
        path = record_path(results / config, method)
        if not path.is_file():
            raise SpecError(f"references: {reference} has no results at {path}; run that unit of "
                            f"experiments/configs/{config}.yaml first")
        record = json.loads(path.read_text())
        differ = [key for key, value in plain(spec.shared_settings()).items() if record["settings"].get(key) != value]
        if differ:
            raise SpecError(f"references: {reference} was measured with other {', '.join(differ)} than {spec.name}; "
                            "quote a method with this config's settings, or train it here")
        quoted.append({**record, "method": reference, "row": {**record["row"], "method": reference}})
    return quoted


def unit_status(spec, unit: str, out: Path) -> str:
    """done (results committed for this config), stale (committed for other settings) or to run."""
    paths = [record_path(out, name) for name in spec.units()[unit]]
    if not all(path.is_file() for path in paths):
        return "to run"
    settings = plain(spec.unit_settings(unit))
    same = all(json.loads(path.read_text())["settings"] == settings for path in paths)
    return "done" if same else "stale (the config changed since its results were written)"


def table_row(method, class_names: list) -> dict:
    """Per-class FID and KID, the summary metrics, and what the method cost."""
    final = method.final
    row = {"method": method.name, "cfg": method.arch}
    row.update({f"fid_{name}": final[f"fid_per_class/{name}"] for name in class_names})
    row["fid_per_class_mean"] = final["fid_per_class_mean"]
    for name in class_names:
        row[f"kid_{name}"] = final[f"kid_per_class/{name}"]
        row[f"kid_{name}_std"] = final[f"kid_per_class_std/{name}"]
    row.update(kid_per_class_mean=final["kid_per_class_mean"], fid=final["fid"], kid=final["kid"],
               kid_std=final["kid_std"], class_acc=final["class_acc_mean"])
    row.update({f"{key.split('/')[1]}_acc": value for key, value in final.items() if key.startswith("attr_acc_mean/")})
    row.update(kimg=method.kimg, wall_time_s=round(method.wall_s), models=method.models_trained,
               G_params=method.parameters, peak_mem_gb=method.peak_mem_gb, notes=method.notes)
    return row


def _columns(rows: list) -> list:
    """Every row's columns in order; a column only newer records have goes after its neighbour."""
    columns = []
    for row in rows:
        for previous, column in zip([None, *row], row):
            if column not in columns:
                columns.insert(columns.index(previous) + 1 if previous in columns else len(columns), column)
    return columns


def environment(device) -> dict:
    """Which code and machine made a method's numbers."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout.strip()

    # The results folder is left out: the unit has written its own pictures there by now.
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)experiments/results"))
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")] if Path("/proc/cpuinfo").exists() else [platform.processor()]
        hardware = (f"{models[0] if models else 'CPU'}, {torch.backends.cpu.get_cpu_capability()}, "
                    f"{torch.get_num_threads()} torch threads")
    return {"commit": (git("rev-parse", "HEAD") or "unknown") + (" (with uncommitted changes)" if dirty else ""),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": f"{device} ({hardware})",
            "python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform()}


def method_record(spec, method, class_names: list, fakes_per_class: list, device, unit_seconds: float) -> dict:
    curve = [{"kimg": point.kimg, **{key: value for key, value in method.curve[f"{point.kimg:g}"].items()
                                     if "/" not in key}} for point in method.points]
    return plain({
        "method": method.name, "unit": method.unit, "settings": spec.unit_settings(method.unit),
        "row": table_row(method, class_names), "curve": curve, "curve_num_gen_per_class": spec.curve_num_gen_per_class,
        "final": method.final, "num_gen": spec.num_gen, "final_fakes_per_class": dict(zip(class_names, fakes_per_class)),
        "arch": method.arch, "kimg": method.kimg, "wall_s": method.wall_s,
        "train_img_per_s": method.kimg * 1000 / method.wall_s, "parameters": method.parameters,
        "peak_mem_gb": method.peak_mem_gb, "models": method.models_trained, "notes": method.notes,
        "unit_seconds": unit_seconds, "metric_seconds": method.metric_seconds, "environment": environment(device),
        "generator_num_gen": spec.generator_num_gen if "ppl_w_inception" in method.final else None,
    })


def write_record(record: dict, out: Path) -> None:
    """methods/<method>.json, replaced atomically."""
    path = record_path(out, record["method"])
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(temporary, path)


def _format(column: str, value, row: dict) -> str:
    if value is None:
        return "—"
    if column == "wall_time_s":
        return _duration(value)
    if column.startswith("kid"):
        spread = row.get(f"{column}_std") if column != "kid_per_class_mean" else None
        return f"{value:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")
    if column.endswith("_acc"):
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


def write_tables(rows: list, out: Path, footer: list = ()) -> None:
    """table.csv (raw numbers) and table.md (rounded, KID ± its spread over subsets, the
    best value of each metric in bold, then the footer lines)."""
    columns = _columns(rows)
    rows = [{column: row.get(column) for column in columns} for row in rows]
    with open(out / "table.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    shown = [c for c in columns if not c.endswith("_std")]
    best = {}
    for column in shown:
        measured = [row[column] for row in rows if row[column] is not None]
        if len(measured) > 1 and column.startswith(LOWER_IS_BETTER):
            best[column] = min(measured)
        elif len(measured) > 1 and column.endswith("_acc"):
            best[column] = max(measured)
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in rows:
        cells = [f"**{_format(c, row[c], row)}**" if c in best and row[c] == best[c]
                 else _format(c, row[c], row) for c in shown]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "table.md").write_text("\n".join([*lines, "", *footer]).rstrip() + "\n")


def sample_sizes(records: list) -> list:
    """What the table's numbers were measured on, so a reader can judge their bias."""
    record = records[0]
    counts = sorted(set(record["final_fakes_per_class"].values()))
    per_class = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return [f"FID and KID from {record['num_gen']} fakes (classes drawn as in the data); per-class FID, per-class KID "
            f"(± its spread over subsets) and class consistency from {per_class} fakes a class against all of that "
            f"class's real images; curves (fid_curves.png) from {record['curve_num_gen_per_class']} fakes a class.",
            *_attribute_note(records), ""]


def _attribute_note(records: list) -> list:
    """What the <attribute>_acc columns are, where a record has them."""
    columns = [c for c in _columns([r["row"] for r in records]) if c.endswith("_acc") and c != "class_acc"]
    if not columns:
        return []
    return [f"{', '.join(columns)}: class consistency of one attribute alone (a classifier of that attribute on the "
            "real images' features; does a twemoji_female fake look Twemoji, does it look female?); — where a "
            "record predates it."]


def first_match(records: list) -> list:
    """Where each conditional model's curve first reaches transfer's final mean per-class FID
    (both measured with the curve's fakes), as a share of transfer's kimg."""
    transfer = next((r for r in records if r["method"] == "transfer"), None)
    if transfer is None:
        return []
    target, budget = transfer["curve"][-1]["fid_per_class_mean"], transfer["kimg"]
    finetunes = transfer["models"] - 1
    lines = []
    for record in records:
        if record["models"] != 1:
            continue
        reached = next((point["kimg"] for point in record["curve"] if point["fid_per_class_mean"] <= target), None)
        lines.append(f"{record['method']}: " + (
            f"first at or below transfer's final mean per-class FID ({target:.1f}, after {budget:g} kimg) at "
            f"{reached:g} kimg, {reached / budget:.2f} of transfer's kimg (1/N for its N = {finetunes} fine-tunes: "
            f"{1 / finetunes:.2f})."
            if reached is not None else
            f"never reaches transfer's final mean per-class FID ({target:.1f}) on its curve "
            f"(its last point: {record['curve'][-1]['fid_per_class_mean']:.1f} at {record['curve'][-1]['kimg']:g} kimg)."))
    return lines


def plot_curves(records: list, path: Path) -> None:
    """Mean per-class FID and class consistency against the total kimg each method had
    trained at that point (the fakes per class of the curve, fewer than the table's)."""
    figure = Figure(figsize=(10, 4.2))
    fid_axes, acc_axes = figure.subplots(1, 2)
    for record in records:
        kimgs = [point["kimg"] for point in record["curve"]]
        style = dict(marker="o", markersize=4) if len(kimgs) > 1 else dict(marker="*", markersize=11)
        fid_axes.plot(kimgs, [point["fid_per_class_mean"] for point in record["curve"]], label=record["method"], **style)
        acc_axes.plot(kimgs, [point["class_acc_mean"] for point in record["curve"]], label=record["method"], **style)
    fakes = sorted({record["curve_num_gen_per_class"] for record in records})
    fid_axes.set_ylabel(f"mean per-class FID ({'/'.join(map(str, fakes))} fakes a class; lower is better)")
    acc_axes.set_ylabel("class consistency (higher is better)")
    for axes in (fid_axes, acc_axes):
        axes.set_xlabel("training kimg (all models of the method together)")
        axes.grid(alpha=0.3)
    fid_axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def sample_rows(generator, class_names: list) -> tuple:
    """(row names, label vectors [rows, c_dim]): the data's classes, or for a model trained on
    attributes every combination, those the data lacks marked."""
    labels = generator.labels
    if labels is None or not labels.attributes:
        return class_names, torch.eye(len(class_names))
    return ([labels.describe(k) for k in range(len(labels.class_names))],
            torch.from_numpy(labels.class_vectors))


def save_samples(method, class_names: list, seeds: list, device, path: Path) -> None:
    """One row per class, one column per seed, the same seeds for every method (psi 1, as measured)."""
    generator = method.points[-1].build(device)
    z = z_from_seeds(seeds, generator.z_dim, device)
    row_names, vectors = sample_rows(generator, class_names)
    rows = []
    with torch.no_grad():
        for vector in vectors.to(device):
            rows.append(generator(z, vector.expand(len(seeds), -1)).permute(0, 2, 3, 1).cpu().numpy())
    save_grid(np.concatenate(rows), path, columns=len(seeds), row_labels=row_names)


def save_swap_grid(method, class_names: list, seed: int, swap_layer: int, device, path: Path) -> None:
    """Inside one conditional model: rows = content class (first ws), columns = style class (the rest)."""
    model = method.points[-1].build(device)
    G = model.G
    if not 1 <= swap_layer <= G.num_ws - 1:
        raise SpecError(f"swap_layer {swap_layer} is outside 1..{G.num_ws - 1} for {method.name}")
    drawer = Drawer(G, device, label_space=model.labels)
    class_names = list(model.labels.class_names) if model.labels is not None and model.labels.attributes \
        else class_names
    classes = range(len(class_names))
    tiles = [drawer.image(seed, content, style, swap_layer) for content in classes for style in classes]
    save_grid(np.concatenate(tiles), path, columns=len(class_names), row_labels=class_names,
              column_labels=[f"style {name}" for name in class_names])


SG2_VS_SG3_COLUMNS = ["method", "cfg", "kimg", "training_h", "sec_per_kimg", "train_img_per_s", "G_params",
                      "peak_mem_gb", "fid", "fid_per_class_mean", "kid", "class_acc", "eqt_int", "eqt_frac", "eqr",
                      "ppl_w_inception", "fid_per_class_mean_at_shared_kimg", "notes"]


def sg2_vs_sg3_row(record: dict, shared_kimg: float) -> dict:
    """One conditional model: cost, speed, quality, equivariance and path length (None where not measured)."""
    final = record["final"]
    nearest = min(record["curve"], key=lambda point: abs(point["kimg"] - shared_kimg))
    return {"method": record["method"], "cfg": record["arch"], "kimg": record["kimg"],
            "training_h": record["wall_s"] / 3600, "sec_per_kimg": record["wall_s"] / record["kimg"],
            "train_img_per_s": record["train_img_per_s"], "G_params": record["parameters"],
            "peak_mem_gb": record["peak_mem_gb"], "fid": final["fid"], "fid_per_class_mean": final["fid_per_class_mean"],
            "kid": final["kid"], "class_acc": final["class_acc_mean"],
            **{name: final.get(name) for name in ("eqt_int", "eqt_frac", "eqr", "ppl_w_inception")},
            "fid_per_class_mean_at_shared_kimg": nearest["fid_per_class_mean"], "notes": record["notes"]}


def _sg2_vs_sg3_cell(column: str, value) -> str:
    if value is None:
        return "—"
    if column == "training_h":
        return _duration(value * 3600)
    if column == "G_params":
        return f"{value / 1e6:.2f} M"
    if column in ("eqt_int", "eqt_frac", "eqr"):
        return f"{value:.1f}"
    if column == "kid":
        return f"{value:.4f}"
    if column == "class_acc":
        return f"{value:.3f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_sg2_vs_sg3(records: list, out: Path) -> None:
    """The conditional models side by side (sg2_vs_sg3.md and .csv): cost, speed, quality,
    equivariance (dB, StyleGAN3 only) and path length, and the FID at equal kimg; with
    sg2_vs_sg3.png, every StyleGAN3 model's motion strip (motion.py) one under the other."""
    conditional = [r for r in records if r["models"] == 1]
    path = out / "sg2_vs_sg3.md"
    lines = [f"# Conditional StyleGAN2 vs StyleGAN3 ({out.name})", ""]
    if not any(r["arch"].startswith("stylegan3") for r in conditional):
        path.write_text("\n".join(lines + ["No StyleGAN3 model of this config has results yet.", ""]))
        return
    shared_kimg = min(r["curve"][-1]["kimg"] for r in conditional)
    rows = [sg2_vs_sg3_row(r, shared_kimg) for r in conditional]
    header = [c if c != "fid_per_class_mean_at_shared_kimg" else f"fid_per_class_mean at {shared_kimg:g} kimg (curve)"
              for c in SG2_VS_SG3_COLUMNS]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_sg2_vs_sg3_cell(c, row[c]) for c in SG2_VS_SG3_COLUMNS) + " |" for row in rows]
    counts = sorted({r.get("generator_num_gen") for r in conditional if r.get("generator_num_gen")})
    best = min(rows, key=lambda row: row["fid_per_class_mean"])
    fastest = max(rows, key=lambda row: row["train_img_per_s"])
    lines += ["", f"Lowest final mean per-class FID: {best['method']}. Fastest to train: {fastest['method']}. "
              "Training time is the trainings' own (ticks, snapshots, grids), without the metrics; FID at equal kimg "
              "compares the curves where both have a point. EQ-T int, EQ-T frac and EQ-R are in dB (higher is more "
              "equivariant); StyleGAN2 has no input grid to move (—). ppl_w_inception is the path length in w on "
              "Inception features, not NVlabs' VGG16 PPL (docs/metrics.md)"
              + (f"; both from {', '.join(map(str, counts))} latents of the final model." if counts else ".")
              + " — : not measured.", ""]
    path.write_text("\n".join(lines))
    with open(out / "sg2_vs_sg3.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=SG2_VS_SG3_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    strips = [out / f"motion_{r['method']}.png" for r in conditional if (out / f"motion_{r['method']}.png").is_file()]
    if strips:
        stack_pictures([Image.open(strip) for strip in strips], out / "sg2_vs_sg3.png")


def stack_pictures(pictures: list, path: Path) -> None:
    """The pictures one under the other, on white, left-aligned."""
    stacked = Image.new("RGB", (max(p.width for p in pictures), sum(p.height for p in pictures)), "white")
    top = 0
    for picture in pictures:
        stacked.paste(picture.convert("RGB"), (0, top))
        top += picture.height
    stacked.save(path)


def write_environment(spec_path: Path, records: list, path: Path) -> None:
    """Which code, machine and library versions made each method's numbers, and what each cost."""
    lines = [f"config: {spec_path}", ""]
    for r in records:
        env = r["environment"]
        lines += [f"{r['method']} (unit {r['unit']}): finished {env['finished']}, commit {env['commit']}",
                  f"  device: {env['device']}; python {env['python']}, torch {env['torch']}; {env['platform']}",
                  f"  training {_duration(r['wall_s'])} for {r['kimg']:g} kimg ({r['train_img_per_s']:.1f} img/s); "
                  + _unit_cost(r)]
    path.write_text("\n".join(lines) + "\n")


def _unit_cost(record: dict) -> str:
    """What the unit cost beyond training. Training and metric times add up every call of the
    runner that did that work; the wall time is the last call's (older records have only it)."""
    if "metric_seconds" not in record:
        return f"the whole unit (training + metrics + pictures) {_duration(record['unit_seconds'])}"
    return (f"metrics {_duration(record['metric_seconds'])} (over every call that measured them); "
            f"the runner's last call {_duration(record['unit_seconds'])}")


def write_unit_outputs(spec, methods: list, class_names: list, fakes_per_class: list, device, unit_seconds: float,
                       swap_source: str, out: Path) -> None:
    """A finished unit's own files: samples; for the swap source the swap grid and its final
    generator alone (<method>_G_ema.pt, float16, to ship); its records last (a record on disk
    means the unit is done)."""
    out.mkdir(parents=True, exist_ok=True)
    seeds = parse_seeds(spec.sample_seeds)
    for method in methods:
        save_samples(method, class_names, seeds, device, out / f"samples_{method.name}.png")
        if method.models_trained == 1 and method.arch.startswith("stylegan3"):
            model = method.points[-1].build(device)
            motion_strip(model.G, method.name, seeds[0], sample_rows(model, class_names)[1][0], device).save(
                out / f"motion_{method.name}.png")
        if method.name == swap_source:
            save_swap_grid(method, class_names, seeds[0], spec.swap_layer, device, out / "swap_grid.png")
            export_generator(load_snapshot(method.runs[0]["snapshots"][-1][1]), out / f"{method.name}_G_ema.pt")
    for method in methods:
        write_record(method_record(spec, method, class_names, fakes_per_class, device, unit_seconds), out)


def write_summary(spec, spec_path: Path, out: Path, say) -> list:
    """Table, curves, StyleGAN2 vs 3 and environment from every committed record; the records."""
    records = read_records(spec, out)
    if not records:
        return records
    quoted = read_references(spec, out.parent)
    shutil.copyfile(spec_path, out / "config.yaml")
    missing = [name for name in spec.method_names() if name not in {r["method"] for r in records}]
    footer = [*sample_sizes(records), *first_match(records)] + ([f"Not run yet: {', '.join(missing)}."] if missing else [])
    footer += [f"{r['method']}: quoted from experiments/results/{r['method'].split('/')[0]}/ (the same data, "
               "training settings and metrics)." for r in quoted]
    write_tables([r["row"] for r in quoted + records], out, footer)
    plot_curves(quoted + records, out / "fid_curves.png")
    write_sg2_vs_sg3(records, out)
    shares = write_class_shares(quoted + records, out)
    write_environment(spec_path, records, out / "environment.txt")
    say(f"Wrote {out}/: table.md, table.csv, fid_curves.png, sg2_vs_sg3.md/.csv/.png, "
        + ("class_shares.md/.csv, " if shares else "") + f"environment.txt from {len(records)} of "
        f"{len(spec.method_names())} methods" + (f" (not run yet: {', '.join(missing)})" if missing else ""))
    return records
