# shared/seeds/000, "Downloading Files": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
from ml_dash import Experiment

with Experiment(name="my-experiment", project="project",
        local_path=".ml-dash").run as experiment:
    # Upload a file first
    upload_result = experiment.files(
        file_path="model.pth",
        prefix="/models"
    ).save()

    file_id = upload_result["id"]

    # Download to specific path
    downloaded_path = experiment.files(
        file_id=file_id,
        dest_path="./downloaded_model.pth"
    ).download()

    print(f"Downloaded to: {downloaded_path}")
