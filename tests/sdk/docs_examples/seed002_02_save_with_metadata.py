# shared/seeds/002, "Save with Metadata": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
result = exp.files("models").save_torch(
    model,
    to="best_model.pt",
    description="Best model from epoch 50",
    tags=["checkpoint", "best"],
    metadata={"epoch": 50, "val_accuracy": 0.95},
)
