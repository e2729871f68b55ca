# shared/seeds/000, "Uploading Configuration": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
import json
from ml_dash import Experiment

config = {
    "model": {"architecture": "resnet50", "pretrained": True},
    "training": {"epochs": 100, "batch_size": 32, "lr": 0.001}
}

with Experiment(name="my-experiment", project="project",
        local_path=".ml-dash").run as experiment:
    # Metric as parameters
    experiment.params.set(**config)

    # Also save as file
    with open("config.json", "w") as f:
        json.dump(config, f, indent=2)

    experiment.files(
        "config.json",
        prefix="/config",
        description="Experiment configuration",
        tags=["config"]
    )
