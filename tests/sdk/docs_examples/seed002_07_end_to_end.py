# shared/seeds/002, "End-to-End Example": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
import torch
from ml_dash import Experiment

with Experiment(prefix="alice/cv/resnet").run as exp:
    exp.params.set(model="resnet50", epochs=100)

    best_acc = 0.0
    for epoch in range(100):
        loss, acc = train_one_epoch(model, loader)
        exp.metrics.log(epoch=epoch, train=dict(loss=loss, accuracy=acc))

        if (epoch + 1) % 10 == 0:
            exp.files("checkpoints").save_torch(
                model.state_dict(),
                to=f"epoch_{epoch + 1}.pt",
                tags=["checkpoint"],
                metadata={"epoch": epoch + 1, "accuracy": acc},
            )

        if acc > best_acc:
            best_acc = acc
            exp.files("models").save_torch(
                model.state_dict(),
                to="best.pt",
                description=f"Best model (acc={best_acc:.4f})",
                tags=["best"],
                metadata={"epoch": epoch + 1, "accuracy": best_acc},
            )
