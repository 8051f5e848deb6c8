"""trl trainers with the two behaviours of the authors' runs that trl 1.16 no longer has.

- ``kto_pair``: the paired KTO/HALO loss of trl 0.8's ``DPOTrainer(loss_type="kto_pair")``, which the
  authors' ``dpo.py`` used for every "DPO" row of the paper. trl 1.16 dropped it; ``LmoltDPOTrainer``
  adds it back on top of trl's own data pipeline, forward pass and reference model.
- ``append_eos: false``: the authors' ``sft.py`` never appended EOS (trl 0.8's formatting_func path),
  so their SFT model never learned to stop. trl 1.16 always appends it; ``NoEOSSFTTrainer`` takes
  that one token off again after trl's own tokenisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from trl import DPOTrainer, SFTTrainer

KTO_PAIR = "kto_pair"
_NON_MODEL_KEYS = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}


def kto_pair_losses(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
                    reference_chosen_logps: torch.Tensor, reference_rejected_logps: torch.Tensor,
                    beta: float) -> torch.Tensor:  # fmt: skip
    """Per-sequence kto_pair losses, ``2 * batch`` of them (chosen half first), as trl 0.8 computed them.

    Eq. 7 of the HALOs report: each half's reference point is the batch-mean policy/reference
    log-ratio of the *other* half, clamped at 0. As in trl 0.8, the reference points are not
    detached, so gradients also flow through them. The training loss is the mean of the result.
    """
    chosen_logratios = policy_chosen_logps - reference_chosen_logps
    rejected_logratios = policy_rejected_logps - reference_rejected_logps
    chosen_kl = chosen_logratios.mean().clamp(min=0)
    rejected_kl = rejected_logratios.mean().clamp(min=0)
    return torch.cat(
        (
            1 - F.sigmoid(beta * (chosen_logratios - rejected_kl)),
            1 - F.sigmoid(beta * (chosen_kl - rejected_logratios)),
        ),
        0,
    )


class LmoltDPOTrainer(DPOTrainer):
    """trl's DPOTrainer; with ``loss_type: [kto_pair]`` the loss is trl 0.8's paired KTO loss.

    Every other loss type is trl's own. kto_pair reuses trl's tokenisation, collator, fused
    log-prob forward and reference (the adapter-disabled base for PEFT, or precomputed log-probs),
    and sums log-probs over completion tokens, as trl 0.8 did for every loss except IPO.
    """

    def _compute_loss(self, model, inputs, return_outputs):
        if KTO_PAIR not in self.loss_types:
            return super()._compute_loss(model, inputs, return_outputs)
        if list(self.loss_types) != [KTO_PAIR]:  # config.validate refuses this before training
            raise ValueError(
                f"loss_type {KTO_PAIR!r} cannot be combined with other losses: {self.loss_types}"
            )
        mode = "train" if self.model.training else "eval"
        policy, ref = self._completion_logps(model, inputs)
        (chosen, rejected), (ref_chosen, ref_rejected) = policy.chunk(2, dim=0), ref.chunk(2, dim=0)
        loss = kto_pair_losses(chosen, rejected, ref_chosen, ref_rejected, self.beta).mean()
        self._log_kto_pair(mode, chosen, rejected, ref_chosen, ref_rejected)
        if return_outputs:  # only compute_metrics wants logits; the fused head has none (trl recomputes too)
            with torch.no_grad():
                outputs = model(**{k: v for k, v in inputs.items() if k not in _NON_MODEL_KEYS})
            return loss, outputs
        return loss

    def _completion_logps(self, model, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed completion log-probs of the batch ([chosen; rejected]) under the policy and the reference."""
        from accelerate.utils import is_peft_model
        from trl.models.utils import disable_gradient_checkpointing
        from trl.trainer.utils import use_adapter

        kwargs = {k: v for k, v in inputs.items() if k not in _NON_MODEL_KEYS}
        kwargs["use_cache"] = False
        completion_mask = inputs["completion_mask"]
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        seq_len = completion_mask.size(1) - 1
        out = model(**kwargs, labels=labels, fused_lm_head=True)
        policy = out.log_probs[:, -seq_len:].sum(dim=1)
        if self.precompute_ref_logps:
            return policy, torch.cat((inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]), 0)
        with (
            torch.no_grad(),
            disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
        ):
            if is_peft_model(self.model) and self.ref_model is None:  # the base, adapter disabled
                unwrapped = self.accelerator.unwrap_model(self.model)
                name = "ref" if "ref" in getattr(unwrapped, "peft_config", {}) else None
                with use_adapter(unwrapped, adapter_name=name):
                    ref_out = self.model(**kwargs, labels=labels, fused_lm_head=True)
            else:
                ref_out = self.ref_model(**kwargs, labels=labels, fused_lm_head=True)
        return policy, ref_out.log_probs[:, -seq_len:].sum(dim=1)

    def _log_kto_pair(self, mode: str, chosen, rejected, ref_chosen, ref_rejected) -> None:
        """The reward metrics trl logs for every DPO loss, so kto_pair runs read the same."""
        gather = self.accelerator.gather
        chosen_rewards = self.beta * (chosen - ref_chosen).detach()
        rejected_rewards = self.beta * (rejected - ref_rejected).detach()
        metrics = self._metrics[mode]
        metrics["rewards/chosen"].append(gather(chosen_rewards).mean().item())
        metrics["rewards/rejected"].append(gather(rejected_rewards).mean().item())
        metrics["rewards/accuracies"].append(
            gather((chosen_rewards > rejected_rewards).float()).mean().item()
        )
        metrics["rewards/margins"].append(gather(chosen_rewards - rejected_rewards).mean().item())
        metrics["logps/chosen"].append(gather(chosen.detach()).mean().item())
        metrics["logps/rejected"].append(gather(rejected.detach()).mean().item())


class NoEOSSFTTrainer(SFTTrainer):
    """trl's SFTTrainer without the EOS it appends to every completion (the authors' sft.py)."""

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        dataset = super()._prepare_dataset(
            dataset, processing_class, args, packing, formatting_func, dataset_name
        )
        eos = self._tokenizer.eos_token_id

        def drop_eos(example):
            # trl appended exactly one EOS; a sequence truncated by max_length has lost it already
            if example["input_ids"] and example["input_ids"][-1] == eos:
                return {k: example[k][:-1] for k in ("input_ids", "labels") if k in example}
            return {}

        return dataset.map(drop_eos, desc=f"Removing the appended EOS from {dataset_name} dataset")
