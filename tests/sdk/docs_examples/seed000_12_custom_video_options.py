# shared/seeds/000, "Custom Video Options": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
# Custom codec and quality
experiment.files(prefix="/videos").save_video(
    frames,
    "high_quality.mp4",
    fps=30,
    codec='libx264',
    quality=8,
    pixelformat='yuv420p'
)

# Animated GIF with custom duration
experiment.files(prefix="/videos").save_video(
    frames,
    "animation.gif",
    fps=10,
    duration=0.1  # 100ms per frame
)
