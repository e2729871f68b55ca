# shared/seeds/000, "Organizing Files": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
with Experiment(name="my-experiment", project="project",
        local_path=".ml-dash").run as experiment:
    # Models
    experiment.files("model.pth", prefix="/models")
    experiment.files("best_model.pth", prefix="/models/checkpoints")

    # Visualizations
    experiment.files("loss_curve.png", prefix="/visualizations")
    experiment.files("confusion_matrix.png", prefix="/visualizations")

    # Configuration
    experiment.files("config.json", prefix="/config")

    # Results
    experiment.files("results.csv", prefix="/results")
