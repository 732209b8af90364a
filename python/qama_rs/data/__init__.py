"""Data layer: BEIR folders and user corpora (``beir``) and offline, cached embeddings (``embed``)."""
