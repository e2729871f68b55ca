# shared/seeds/000, "Download to Current Directory": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
with Experiment(name="my-experiment", project="project",
        local_path=".ml-dash").run as experiment:
    # List all files
    files = experiment.files().list()

    # Download first file using original filename
    if files:
        file_id = files[0]["id"]
        downloaded_path = experiment.files(file_id=file_id).download()
        print(f"Downloaded: {downloaded_path}")
