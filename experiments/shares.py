"""class_shares.md / .csv: how every method draws the classes that some of them trained on
less of (train: class_fraction), side by side.

A class held out (share 0) or cut (say 0.1) is only worth its figures next to the same
figures from models that saw all of it: its FID and KID against that class's real images,
its class consistency and, where the data has attributes, whether its fakes show each
attribute (does a held-out openmoji_female look OpenMoji? does it look female?).
"""

import csv
from pathlib import Path


def train_settings(record: dict) -> dict:
    """The train.py settings the record's method ran with: the shared ones, its own over them."""
    settings = record["settings"]
    return {**settings["train"], **settings[record["unit"]].get("train", {})}


def trained_share(record: dict, name: str) -> float:
    """The share of class `name`'s images that the record's method trained on."""
    return train_settings(record).get("class_fraction", {}).get(name, 1.0)


def label_kind(record: dict) -> str:
    train = train_settings(record)
    kind = train.get("labels", "class")
    return f"{kind}, --label-mix {train.get('label_mix', 'data')}" if kind == "attributes" else kind


def cut_classes(records: list) -> list:
    """The classes that any record trained on less than all of, in the order they are named."""
    names = []
    for record in records:
        names += [name for name in train_settings(record).get("class_fraction", {}) if name not in names]
    return names


def share_row(record: dict, name: str) -> dict:
    final = record["final"]
    row = {"class": name, "method": record["method"], "labels": label_kind(record),
           "share_trained_on": trained_share(record, name), "fid": final[f"fid_per_class/{name}"],
           "kid": final[f"kid_per_class/{name}"], "kid_std": final[f"kid_per_class_std/{name}"],
           "class_acc": final[f"class_acc/{name}"]}
    row.update({f"{key.split('/')[1]}_acc": value for key, value in final.items()
                if key.startswith("attr_acc/") and key.endswith(f"/{name}")})
    return row


def _cell(column: str, value, row: dict) -> str:
    if value is None:
        return "—"
    if column == "kid":
        return f"{value:.4f} ± {row['kid_std']:.4f}"
    if column == "fid":
        return f"{value:.1f}"
    if column.endswith("_acc"):
        return f"{value:.3f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def write_class_shares(records: list, out: Path) -> bool:
    """class_shares.md and .csv where some record trained on a share of a class; False if none did."""
    names = cut_classes(records)
    if not names:
        return False
    rows = [share_row(record, name) for name in names for record in records]
    columns = list(dict.fromkeys(column for row in rows for column in row))
    with open(out / "class_shares.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows({column: row.get(column) for column in columns} for row in rows)
    shown = [column for column in columns if column != "kid_std"]
    lines = ["Each method's fakes of the classes some methods trained on only a share of (0: held out), "
             "against all of that class's real images.", ""]
    for name in names:
        lines += [f"## {name}", "", "| " + " | ".join(shown[1:]) + " |", "|" + "---|" * (len(shown) - 1)]
        lines += ["| " + " | ".join(_cell(c, row.get(c), row) for c in shown[1:]) + " |"
                  for row in rows if row["class"] == name]
        lines.append("")
    (out / "class_shares.md").write_text("\n".join(lines))
    return True
