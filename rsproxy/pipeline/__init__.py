"""The pipeline: stage model, registry, file validation, engine, worker thread and hot reload."""
