# shared/seeds/002, "Paths and Organization": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
exp.files("models").upload("model.pth")
exp.files("models/checkpoints").upload("best.pth")
exp.files("config").save_json(config, to="config.json")
exp.files("results").upload("results.csv")
