"""Bridges to other frameworks. Nothing here is imported by ``import qama_rs``; each module imports its
framework when it is imported.

* :mod:`qama_rs.integrations.mteb` — an mteb encoder over the embedding cache and a search backend driven
  by a factory spec;
* :mod:`qama_rs.integrations.langchain` — ``QamaVectorStore``, a LangChain ``VectorStore``
  (``pip install "qama-rs[langchain]"``);
* :mod:`qama_rs.integrations.llamaindex` — ``QamaVectorStore``, a LlamaIndex ``BasePydanticVectorStore``
  (``pip install "qama-rs[llamaindex]"``);
* :mod:`qama_rs.integrations.collection` — what the two vector stores share: documents, the index, when a
  codec is fitted, persistence and search; :mod:`qama_rs.integrations.docstore` — the SQLite document table
  and the metadata-filter language.
"""
