# shared/seeds/000, "Saving Videos": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
import numpy as np
from ml_dash import Experiment

with Experiment(name="my-experiment", project="project",
        local_path=".ml-dash").run as experiment:
    # Generate frame stack
    def im(x, y):
        canvas = np.zeros((200, 200))
        for i in range(200):
            for j in range(200):
                if x - 5 < i < x + 5 and y - 5 < j < y + 5:
                    canvas[i, j] = 1
        return canvas

    frames = [im(100 + i, 80) for i in range(20)]

    # Save as MP4 (default 20 FPS)
    experiment.files(prefix="/videos").save_video(frames, "animation.mp4")

    # Save with custom FPS
    experiment.files(prefix="/videos").save_video(frames, "animation.mp4", fps=30)

    # Save as GIF
    experiment.files(prefix="/videos").save_video(frames, "animation.gif")
