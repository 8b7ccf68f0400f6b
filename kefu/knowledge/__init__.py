"""The knowledge base: documents, chunks, hybrid (BM25 + dense) retrieval and extractive answers."""
