"""Raw landing: object key layouts and the dataset replay."""
