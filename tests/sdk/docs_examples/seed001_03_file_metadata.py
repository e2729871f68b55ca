# shared/seeds/001, "File Metadata": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
with Experiment(name="my-experiment", project="project",
        local_path=".ml-dash") as experiment:
    experiment.file(
        "best_model.pth",
        prefix="/models",
        description="Best model from epoch 50",
        tags=["checkpoint", "best"],
        metadata={
            "epoch": 50,
            "val_accuracy": 0.95,
            "optimizer_state": True
        }
    )
