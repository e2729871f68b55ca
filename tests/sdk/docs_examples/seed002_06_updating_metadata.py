# shared/seeds/002, "Updating Metadata": the docs' code block, verbatim.
# ruff: noqa
# fmt: off
exp.files(
    file_id="abc123",
    description="Updated description",
    tags=["new", "tags"],
    metadata={"updated": True},
).update()
