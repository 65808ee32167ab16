"""The Models page: installed models, catalog, Hugging Face search, downloads, imports."""
