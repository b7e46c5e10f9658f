"""`train.py --dry-run`: what a run would do, without doing it (NVlabs' -n/--dry-run).

It resolves the settings exactly as training would (data set, resume file, preset) and
prints them with a summary of the data, so that a long run's settings can be checked
before any folder is made.
"""

from pathlib import Path

import yaml

from cstylegan.config import TrainConfig
from cstylegan.runtime.distributed import Processes
from cstylegan.training.loop import describe_labels, next_run_dir, open_data


def dry_run(config: TrainConfig, log=print) -> None:
    config, dataset, resume, cur_nimg = open_data(config, Processes(), log)
    log("Training options:")
    log(yaml.safe_dump(config.to_dict(), sort_keys=False).rstrip())
    log(f"Data: {config.data}, {len(dataset)} images at {dataset.resolution}px" + describe_labels(dataset, config))
    if config.cond and config.class_names:
        width = max(map(len, config.class_names))
        for name, count in dataset.class_counts.items():
            log(f"  {name:<{width}}  {count}")
    log(f"Start: {'from ' + str(resume.path) if resume else 'from scratch'} at {cur_nimg / 1000:g} kimg")
    log(f"Run folder: {next_run_dir(Path(config.outdir), config.description())}")
    log("Dry run: nothing was trained or written.")
