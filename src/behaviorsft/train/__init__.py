"""BehaviorSFT and General SFT training: data, tokens, LoRA, recipe, selection, merge.

One module per step: ``data`` (SFT examples from a BENCH, bad-data report),
``tokens`` (behaviour tokens, resize policy, row init), ``lora`` (LoRA with
trainable token rows, and the TRL fused-head fix), ``config`` (the recipe and
overrides), ``callbacks`` (validation accuracy, training log), ``trainer``
(``train``), ``merge`` (adapter -> plain weights). See docs/training.md.
"""
