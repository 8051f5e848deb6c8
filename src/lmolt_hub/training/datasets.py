"""The triple dataset, shaped for each trainer.

Contract (see TEAM.md): config ``default`` has columns ``id, direction,
source, prompt, chosen, rejected, molecule, caption, template_version``;
config ``kto`` has ``id, direction, prompt, completion, label``.

- SFT: ``prompt`` / ``completion`` (= chosen): loss on the completion only.
- DPO, CPO: ``prompt`` / ``chosen`` / ``rejected``.
- KTO: ``prompt`` / ``completion`` / ``label`` from the ``kto`` config, or
  from triples with ``unpair_triples: true``.

Every completion gets one leading space here (``join_completions``): the
prompt ends "### Response:" and trl joins ``prompt + completion`` as strings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from lmolt_hub.formats.triples import KTO_COLUMNS, TRIPLE_COLUMNS, unpair  # noqa: F401 - the contract
from lmolt_hub.hub.ref import HubRef, is_local, pin
from lmolt_hub.training.config import RecipeError
from lmolt_hub.training.registry import method_spec

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class DatasetRef(HubRef):
    """The training dataset, pinned, with the config (``default`` triples or ``kto``) read from it."""

    config: str | None = None
    repo_type: str = "dataset"


def load_split(name: str, config: str | None, revision: str | None, split: str):
    """One split of a Hub dataset or of a local directory (save_to_disk output or data files)."""
    import datasets

    if is_local(name):
        path = Path(name).expanduser()
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise RecipeError(f"local dataset {name} has no split {split!r}; it has {sorted(ds)}")
                return ds[split]
            return ds
        return datasets.load_dataset(str(path), name=config, split=split)
    try:
        return datasets.load_dataset(name, name=config, revision=revision, split=split)
    except ValueError as e:  # unknown split / config
        raise RecipeError(f"dataset {name} (config {config!r}) cannot give split {split!r}: {e}") from e


def resolve_dataset(name: str, config: str | None, revision: str | None) -> DatasetRef:
    hint = "push it first with `lmolt-hub data build` or fix dataset_name"
    ref = pin(name, revision, repo_type="dataset", hint=hint, error=RecipeError)
    return DatasetRef(ref.id, ref.revision, ref.sha, local_path=ref.local_path, config=config)


def prepare(method: str, ds, directions: list[str] | None = None, unpair: bool = False,
            max_samples: int | None = None):  # fmt: skip
    """Filter by direction and keep exactly the columns ``method``'s trainer needs (its ``columns``)."""
    spec = method_spec(method)
    cols = set(ds.column_names)
    if directions:
        if "direction" not in cols:
            raise RecipeError("directions is set but the dataset has no 'direction' column to filter on")
        wanted = set(directions)
        ds = ds.filter(lambda d: d in wanted, input_columns="direction")
        if len(ds) == 0:
            raise RecipeError(f"no rows left after keeping directions {directions}")
    if spec.unpaired and unpair:
        ds = unpair_triples(ds)
        cols = set(ds.column_names)
    missing = [c for c in spec.columns if c not in cols]
    if missing:
        raise RecipeError(_missing_message(method, missing, sorted(cols)))
    _check_template_version(ds)
    if max_samples is not None:
        ds = ds.select(range(min(max_samples, len(ds))))
    ds = ds.select_columns(list(spec.columns))
    for old, new in spec.rename.items():
        ds = ds.rename_column(old, new)
    if spec.unpaired:
        labels = set(ds.unique("label"))
        if len(labels) < 2:
            raise RecipeError(f"KTO needs both desirable and undesirable rows; label has only {labels}")
    return join_completions(ds)


def join_completions(ds):
    """Completions as trl appends them to the prompt (``prompt + completion``, no separator of its
    own): with one leading space (``prompts.join_completion``), so the prompt ends on a token boundary."""
    from lmolt_hub.prompts import join_completion

    cols = [c for c in ("completion", "chosen", "rejected") if c in ds.column_names]
    return ds.map(lambda row: {c: join_completion(row[c]) for c in cols})


def _check_template_version(ds) -> None:
    """Warn when the prompts were built with another template than evaluation will use."""
    from lmolt_hub.prompts import TEMPLATE_VERSION

    if "template_version" in ds.column_names:
        versions = set(ds.unique("template_version"))
        if versions != {TEMPLATE_VERSION}:
            logger.warning(
                "dataset prompts use template %s but lmolt-hub evaluates with %s; rebuild the dataset",
                sorted(versions), TEMPLATE_VERSION,
            )  # fmt: skip


def _missing_message(method: str, missing: list[str], have: list[str]) -> str:
    spec = method_spec(method)
    msg = f"{method} needs dataset columns {list(spec.columns)}; missing {missing} (dataset has {have})."
    if spec.unpaired and "chosen" in have:
        return (
            msg + " These are triples: use dataset_config: kto (unpaired rows) or set unpair_triples: true."
        )
    if "completion" in have and "chosen" in missing:
        return msg + " This is the unpaired kto config: use dataset_config: default for sft/dpo/cpo."
    return msg + " Build the dataset with `lmolt-hub data build` (it writes the contract columns)."


def unpair_triples(ds):
    """Triples -> KTO rows: each prompt once with chosen (True) and once with rejected (False)."""
    missing = [c for c in ("prompt", "chosen", "rejected") if c not in ds.column_names]
    if missing:
        raise RecipeError(f"unpair_triples needs triples with prompt/chosen/rejected; missing {missing}")
    return ds.map(unpair, batched=True, remove_columns=ds.column_names)  # formats.triples: the one unpairing
