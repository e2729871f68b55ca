# shared/seeds/000, "List and Download": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
with Experiment(name="my-experiment", project="project",
        local_path=".ml-dash").run as experiment:
    # List all files
    files = experiment.files().list()

    for file_info in files:
        print(f"File: {file_info['filename']}")
        print(f"  Path: {file_info['path']}")
        print(f"  Size: {file_info['sizeBytes']} bytes")
        print(f"  ID: {file_info['id']}")

    # Download a specific file by ID
    best_model = next(
        (f for f in files if "best" in f.get("tags", [])),
        None
    )

    if best_model:
        downloaded = experiment.files(
            file_id=best_model["id"],
            dest_path="./best_model.pth"
        ).download()
        print(f"Downloaded best model to: {downloaded}")
