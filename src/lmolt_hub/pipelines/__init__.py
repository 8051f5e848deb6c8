"""Pipelines: orchestrators that run several stages in order (the study; chain and quickstart join
them here). Stages never import a pipeline."""
