# shared/seeds/000, "Checksum Verification": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
with Experiment(name="my-experiment", project="project",
        local_path=".ml-dash").run as experiment:
    # Upload
    upload_result = experiment.files(
        file_path="model.pth",
        prefix="/models"
    ).save()

    original_checksum = upload_result["checksum"]
    print(f"Original checksum: {original_checksum}")

    # Download (checksum verified automatically)
    downloaded = experiment.files(
        file_id=upload_result["id"],
        dest_path="./verified_model.pth"
    ).download()

    print(f"Download verified and saved to: {downloaded}")
