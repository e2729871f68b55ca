# shared/seeds/002, "Direct Style (Alternative)": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
exp.files.upload("./model.pt", to="models/checkpoints/best.pt")
exp.files.save_json({"k": "v"}, to="configs/config.json")
exp.files.save_text("content", to="notes/view.yaml")
