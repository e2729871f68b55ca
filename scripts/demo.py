"""The quick-start demo: save a checkpoint, a figure and a video with the SDK into the default store."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ml_dash import Experiment  # noqa: E402


def main() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    with Experiment(prefix="demo/quickstart/run1").run as exp:
        exp.params.set(model="mlp", lr=1e-3)
        losses = [1.0 / (1 + e) for e in range(10)]
        for epoch, loss in enumerate(losses):
            exp.metrics("train_loss").append(value=loss, epoch=epoch)
        ckpt = exp.files("models").save_torch(model.state_dict(), to="best.pt", tags=["best"],
                                              metadata={"epoch": 10, "loss": losses[-1]})
        plt.plot(losses)
        plt.title("Training loss")
        fig = exp.files("plots").save_fig(to="loss.png", dpi=100)
        frames = np.stack([np.roll(np.eye(64), i, axis=1) for i in range(30)])
        video = exp.files("videos").save_video(frames, to="rollout.mp4", fps=15)
        for r in (ckpt, fig, video):
            where = f"{r['path'].rstrip('/')}/{r['filename']}"
            print(f"saved {where:<22} {r['sizeBytes']:>8} bytes  id={r['id']}  sha256={r['checksum'][:12]}")


if __name__ == "__main__":
    main()
