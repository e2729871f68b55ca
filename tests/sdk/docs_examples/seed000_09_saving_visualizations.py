# shared/seeds/000, "Saving Visualizations": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
import matplotlib.pyplot as plt
import numpy as np
from ml_dash import Experiment

with Experiment(name="my-experiment", project="project",
        local_path=".ml-dash").run as experiment:
    # Generate plot
    losses = [0.5, 0.4, 0.3, 0.25, 0.2]
    plt.plot(losses)
    plt.title("Training Loss")
    plt.xlabel("Epoch")
    plt.ylabel("Loss")

    # Save directly (auto-closes figure)
    experiment.files(
        prefix="/visualizations",
        description="Training loss over epochs",
        tags=["plot"]
    ).save_fig("loss_curve.png")

    # Save as PDF with custom DPI
    xs = np.linspace(-5, 5, 100)
    plt.plot(xs, np.cos(xs), label='Cosine')
    plt.legend()
    experiment.files(prefix="/visualizations").save_fig(
        "cosine_function.pdf",
        dpi=150,
        transparent=True,
        bbox_inches='tight'
    )
