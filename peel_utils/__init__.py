"""peel_utils: the small helper package behind the PEEL workbook.

Each module holds one concept (``data``, ``models``, ``prune``, ``train``, ``compare``, ``checkpoints``,
``report``, ``runtime``, ...); the notebooks teach the ideas and call these for the plumbing. A helper's
docstring says which notebook introduced it.

Docstrings and notebooks cite four source documents by number (``shared/sources`` of the project):
source 000 is the "PEEL"-style compression of a ResNet50 medical classifier (pruning-ratio sweep,
fine-tuning, distillation into a ResNet18, file sizes; notebooks 02-04); source 001 is post-training
pruning of LeNet on MNIST (``calc_mask``, ``SparsePruner``, ``get_model_sparsity``; notebook 01);
source 002 is an overview of pruning and distillation (importance criteria, iterative pruning, KD
losses; across notebooks); source 003 is CPD, "Comb, Prune, Distill" (arXiv 2408.03046), dependency-aware
structured pruning with a Hessian-based score and distillation (notebook 05).
"""

__version__ = "0.1.0"
