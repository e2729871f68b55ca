# shared/seeds/002, "API at a Glance": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
from ml_dash import Experiment

with Experiment(prefix="alice/project/my-experiment").run as exp:

    # Upload a file from disk
    exp.files("checkpoints").upload("./model.pt")
    exp.files("checkpoints").upload("./model.pt", to="best.pt")

    # Save Python objects directly
    exp.files("configs").save_json({"lr": 1e-3}, to="config.json")
    exp.files("configs").save_text("yaml: content\n", to="view.yaml")
    exp.files("data").save_blob(b"\x00\x01", to="data.bin")
    exp.files("checkpoints").save_torch(model, to="model.pt")
    exp.files("data").save_pkl(obj, to="data.pkl")
    exp.files("plots").save_fig(fig, to="loss.png")
    exp.files("videos").save_video(frames, to="rollout.mp4", fps=30)
