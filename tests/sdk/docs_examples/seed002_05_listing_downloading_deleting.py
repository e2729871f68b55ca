# shared/seeds/002, "Listing, Downloading, Deleting": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
# List
all_files   = exp.files().list()
model_files = exp.files("models").list()
pngs        = exp.files("images").list("*.png")
configs     = exp.files().list("**/*.json")

# Download
exp.files("model.pt").download()                       # current dir
exp.files("model.pt").download(to="./local.pt")        # custom dest
paths = exp.files("images").download("*.png", to="./out")

# Delete
exp.files("some.txt").delete()
exp.files("images").delete("*.png")
