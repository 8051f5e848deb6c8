"""Orchestrators: entry points that run several stages in order (the quickstart, a chain, the study,
the reviewer's evaluation requests). Only these, and ``lmolt_hub.cli``, may import more than one stage;
the stages themselves hand each other data through the Hub and the shared layers. Stages never import
a pipeline."""
