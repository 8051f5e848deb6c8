"""The evaluation-request runner the top level hands ``leaderboard review --evaluate``.

It lives among the orchestrators because the leaderboard stage never imports the evaluation stage:
``lmolt_hub.cli`` wires it into the leaderboard command's arguments.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class _Evaluator:
    """The harness for one evaluation request; a module-level class (not a closure) so the reviewer
    can run it in a child process (``lmolt_hub.leaderboard.sandbox``)."""

    org: str | None
    device: str | None
    output_dir: str | None
    options: tuple[tuple[str, Any], ...]

    def __call__(self, model_id: str, revision: str) -> Path:
        from lmolt_hub.evaluation.run import EvalConfig, evaluate_model
        from lmolt_hub.generation.loading import LoadOptions
        from lmolt_hub.naming import eval_dataset as eval_dataset_id

        out = Path(self.output_dir or tempfile.mkdtemp(prefix="lmolt-request-"))
        cfg = EvalConfig(
            revision=revision,
            eval_dataset=eval_dataset_id(self.org),
            load=LoadOptions(device=self.device),
            output_dir=str(out),
            **dict(self.options),
        )
        doc = evaluate_model(model_id, cfg)
        return Path(doc["results_path"]).parent


def evaluator(org: str | None = None, device: str | None = "cpu", output_dir: str | Path | None = None,
              **options: Any) -> Callable[[str, str], Path]:  # fmt: skip
    """(model_id, revision) -> folder with the harness's results file and samples: how the
    leaderboard's reviewer serves an evaluation request (``leaderboard review --evaluate``).

    Scores with the eval set's pinned configuration (its NLI model and revision, conventions and
    bootstrap: the harness reads them from the eval set), so the results pass the reviewer's re-score.
    """
    return _Evaluator(org, device, str(output_dir) if output_dir else None, tuple(sorted(options.items())))
