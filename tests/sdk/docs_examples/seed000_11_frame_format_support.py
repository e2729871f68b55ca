# shared/seeds/000, "Frame Format Support": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
# Grayscale frames (H×W)
frames = [np.random.rand(480, 640) for _ in range(30)]
experiment.files(prefix="/videos").save_video(frames, "grayscale.mp4")

# RGB frames (H×W×3)
frames = [np.random.rand(480, 640, 3) for _ in range(30)]
experiment.files(prefix="/videos").save_video(frames, "rgb.mp4")

# Stacked array (N×H×W or N×H×W×C)
frames = np.random.rand(30, 480, 640, 3)
experiment.files(prefix="/videos").save_video(frames, "stacked.mp4")
