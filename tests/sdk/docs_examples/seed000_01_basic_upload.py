# shared/seeds/000, "Basic Upload": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
from ml_dash import Experiment

with Experiment(name="my-experiment", project="project",
        local_path=".ml-dash").run as experiment:
    result = experiment.files("model.pth", prefix="/models")

    print(f"Uploaded: {result['filename']}")
    print(f"Size: {result['sizeBytes']} bytes")
    print(f"Checksum: {result['checksum']}")
