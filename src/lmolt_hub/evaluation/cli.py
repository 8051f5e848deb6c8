"""Command line of the evaluation harness (``lmolt-hub eval`` and ``eval_harness/run.py``).

Two modes:
- ``--model ID_OR_PATH``: generate with the checkpoint, then score (``evaluate_model``);
- ``--predictions FILE --direction D``: score an existing predictions file
  (official TSV or JSONL) without a model (``score_predictions_file``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lmolt_hub.prompts import DIRECTIONS


def _directions(value: str) -> list[str]:
    names = [v.strip() for v in value.replace(",", " ").split() if v.strip()]
    if names in (["both"], ["all"]):
        return list(DIRECTIONS)
    bad = [n for n in names if n not in DIRECTIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown direction(s) {bad or value!r}; choose from {', '.join(DIRECTIONS)}"
        )
    return list(dict.fromkeys(names))


def _key_value(value: str) -> tuple[str, Any]:
    if "=" not in value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    key, raw = value.split("=", 1)
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def add_arguments(p: argparse.ArgumentParser) -> None:
    from lmolt_hub.generation.backends import BACKENDS
    from lmolt_hub.generation.loading import DTYPES
    from lmolt_hub.prompts import PROMPT_FORMATS

    what = p.add_argument_group("what to evaluate (one of)")
    what.add_argument("--model", help="Hub model id or local path (full model or PEFT adapter)")
    what.add_argument("--predictions", help="score this predictions file (official TSV or JSONL) instead")
    what.add_argument("--revision", help="model revision (branch, tag or commit); default main")
    what.add_argument("--direction", choices=DIRECTIONS, help="direction of --predictions")
    what.add_argument("--model-name", help="name recorded for --predictions results (e.g. org/model)")

    data = p.add_argument_group("evaluation set")
    data.add_argument(
        "--eval-dataset",
        help="Hub dataset id or local file; default <org>/lmolt-eval-3k (org from $LMOLT_ORG)",
    )
    data.add_argument("--eval-revision", help="revision of the evaluation dataset")
    data.add_argument("--split", default="test")
    data.add_argument(
        "--directions",
        type=_directions,
        default=list(DIRECTIONS),
        help="comma-separated directions (default: both)",
    )
    data.add_argument("--limit", type=int, help="evaluate only the first N pairs (quick runs)")
    data.add_argument(
        "--prompt-format",
        choices=PROMPT_FORMATS,
        default="auto",
        help="card: the LPM24 base models' Hub-card prompt (lmolt-hub's template); authors: the same words "
        "with the authors' dpo.py whitespace (their DPO/CPO training text); authors-inference: their "
        "inference_pretrained.py layout (what the paper's numbers were generated with); authors-sft: their "
        "sft.py layout; chat: the checkpoint's chat template (lmolt adapters: source + direction); raw: the "
        "bare source; paper: old name of card (auto: raw for seq2seq models, else card)",
    )

    load = p.add_argument_group("loading")
    load.add_argument(
        "--dtype",
        choices=DTYPES,
        default="default",
        help="default: bfloat16 on CUDA (float16 without bf16 support), float32 on CPU; "
        "auto: the checkpoint's stored dtype (float32 for the LPM24 bases)",
    )
    load.add_argument("--load-in-4bit", action="store_true", help="NF4 4-bit quantisation (bitsandbytes)")
    load.add_argument("--trust-remote-code", action="store_true", help="run code from the model repository")
    load.add_argument("--allow-pickle", action="store_true", help="allow pickle (*.bin) weights")
    load.add_argument("--device", help="torch device (default: cuda if available, else cpu)")

    gen = p.add_argument_group("generation")
    gen.add_argument("--backend", choices=BACKENDS, default="auto")
    gen.add_argument("--batch-size", type=int, default=16)
    gen.add_argument(
        "--dry-run",
        action="store_true",
        help="print the estimated peak GPU memory (reads only config files) and exit",
    )
    gen.add_argument("--max-new-tokens", type=int, default=512)
    gen.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--top-k", type=int, default=0)
    gen.add_argument("--num-beams", type=int, default=1)
    gen.add_argument("--repetition-penalty", type=float, default=1.0)
    gen.add_argument("--seed", type=int, default=0, help="seed of sampling and of the bootstrap")
    gen.add_argument(
        "--cache-dir", help="generation cache (default $LMOLT_CACHE or ~/.cache/lmolt-hub/generations)"
    )
    gen.add_argument("--no-cache", action="store_true", help="neither read nor write the generation cache")

    sc = p.add_argument_group("scoring and output")
    sc.add_argument(
        "--nli-model",
        help="NLI cross-encoder for M->L hallucination, a local folder or Hub id (default: the one the "
        "eval set's metric configuration pins, e.g. cross-encoder/nli-deberta-v3-base)",
    )
    sc.add_argument(
        "--metric-option",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra option for lmolt_hub.metrics.score (repeatable; VALUE parsed as JSON if it can be)",
    )
    sc.add_argument(
        "--metric-module",
        type=_key_value,
        action="append",
        default=[],
        metavar="NAME=SOURCE",
        help="score with this metric module instead of the eval set's pinned one (repeatable): NAME is "
        "lmolt_caption, lmolt_molecule or lmolt_hallucination; SOURCE a local folder or <org>/NAME[@revision]",
    )
    sc.add_argument(
        "--no-hallucination",
        action="store_true",
        help="skip the section 3.4 hallucination metrics (no NLI model needed)",
    )
    sc.add_argument(
        "--bootstrap-resamples",
        type=int,
        default=None,
        help="bootstrap resamples of the CIs (default: the eval set's, 1000 for the paper's); 0: no CIs",
    )
    sc.add_argument("--output-dir", default="results")
    sc.add_argument(
        "--push-results", action="store_true", help="upload to the results dataset and the model card"
    )
    sc.add_argument("--results-repo", help="results dataset (default <org>/lmolt-results)")
    sc.add_argument("--quiet", action="store_true", help="no progress bars")


def _print_summary(doc: dict[str, Any]) -> None:
    for direction, metrics in doc["results"].items():
        print(f"\n{direction} (n={doc['n_samples'].get(direction)})")
        cis = doc["confidence_intervals"].get(direction, {})
        for name, value in {**metrics, **doc["hallucination"].get(direction, {})}.items():
            ci = cis.get(name)
            shown = "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))
            extra = f"  [{ci[0]:.4f}, {ci[1]:.4f}]" if ci and None not in ci else ""
            print(f"  {name:<22} {shown}{extra}")
    for direction, metrics in (doc.get("not_computed") or {}).items():
        for name, reason in metrics.items():
            print(f"  {direction}.{name}: {reason}")
    if doc.get("results_path"):
        print(f"\nresults: {doc['results_path']}")
    push = doc.get("push")
    if push:  # --push-results: say what was uploaded and where
        print(f"pushed: {push['results_repo']}/{push['path_in_repo']} (commit {push['results_commit'][:10]})")
        if push.get("card_url"):
            num = f" #{push['card_pr_num']}" if push.get("card_pr_num") else ""
            what = (
                f"opened pull request{num} on the model card"
                if push.get("card_pr")
                else "updated the model card"
            )
            from lmolt_hub.hub.links import discussion_link

            print(f"{what}: {discussion_link(push['card_url'])}")


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from lmolt_hub.evaluation import score_predictions_file
    from lmolt_hub.evaluation.run import EvalConfig, evaluate_model
    from lmolt_hub.generation.backends import GenerationParams
    from lmolt_hub.generation.loading import LoadOptions

    options = dict(args.metric_option)
    modules = {name: str(source) for name, source in args.metric_module}
    if args.predictions:
        if not args.direction:
            raise ValueError("--predictions needs --direction (smiles2caption or caption2smiles)")
        return score_predictions_file(
            args.predictions,
            args.direction,
            output_dir=args.output_dir,
            model_name=args.model_name,
            revision=args.revision,
            nli_model=args.nli_model,
            metric_options=options,
            hallucination=not args.no_hallucination,
            bootstrap_resamples=args.bootstrap_resamples,
            seed=args.seed,
            push_results=args.push_results,
            results_repo=args.results_repo,
            eval_dataset=args.eval_dataset,
            eval_revision=args.eval_revision,
            metric_modules=modules,
        )
    cfg = EvalConfig(
        revision=args.revision,
        eval_dataset=args.eval_dataset,
        eval_revision=args.eval_revision,
        split=args.split,
        directions=args.directions,
        limit=args.limit,
        prompt_format=args.prompt_format,
        backend=args.backend,
        batch_size=args.batch_size,
        generation=GenerationParams(
            max_new_tokens=args.max_new_tokens,
            do_sample=args.do_sample,
            temperature=args.temperature,
            top_p=args.top_p,
            top_k=args.top_k,
            num_beams=args.num_beams,
            repetition_penalty=args.repetition_penalty,
            seed=args.seed,
        ),
        load=LoadOptions(
            dtype=args.dtype,
            load_in_4bit=args.load_in_4bit,
            trust_remote_code=args.trust_remote_code,
            allow_pickle=args.allow_pickle,
            device=args.device,
        ),
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        output_dir=args.output_dir,
        nli_model=args.nli_model,
        metric_options=options,
        metric_modules=modules,
        hallucination=not args.no_hallucination,
        bootstrap_resamples=args.bootstrap_resamples,
        seed=args.seed,
        push_results=args.push_results,
        results_repo=args.results_repo,
        show_progress=not args.quiet,
    )
    return evaluate_model(args.model, cfg)


def is_rust_panic(exc: BaseException) -> bool:
    """A panic inside a Rust extension (tokenizers, safetensors) raised as pyo3's PanicException."""
    return type(exc).__name__ == "PanicException"


def main(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    from lmolt_hub.formats.eval_set import EvalSetError
    from lmolt_hub.formats.results import ResultsValidationError
    from lmolt_hub.generation.loading import ModelLoadError

    if bool(args.model) == bool(args.predictions):
        print("error: pass exactly one of --model or --predictions", file=sys.stderr)
        return 2
    if args.quiet:
        from lmolt_hub.noise import disable_progress_bars

        disable_progress_bars()
    try:
        if args.dry_run and args.model:  # memory plan only (generation/loading.py)
            from lmolt_hub.generation.loading import dry_run

            kw = {"batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens}
            return dry_run(args.model, args.revision, dtype=args.dtype, load_in_4bit=args.load_in_4bit, **kw)
        doc = _run(args)
    except (ModelLoadError, EvalSetError, ResultsValidationError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except HfHubHTTPError as exc:  # e.g. --push-results without write access
        print(f"error: the Hub refused a request: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:
        if not is_rust_panic(exc):
            raise
        # pyo3_runtime.PanicException is a BaseException: a hostile tokenizer.json (e.g. a pre-tokenizer
        # regex that backtracks past Oniguruma's retry limit) ends here, with one line
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"error: the model's tokenizer panicked in Rust ({first}); this model cannot be evaluated "
              "as published: fix its tokenizer.json", file=sys.stderr)  # fmt: skip
        return 2
    if doc:  # {} on non-main accelerate processes
        _print_summary(doc)
    return 0
