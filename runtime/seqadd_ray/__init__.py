"""seqadd on Ray Data: many files, or a Dataset, answered by workers that each load the model
once. Needs the `ray` extra (`pip install 'seqadd[ray]'`); the runtime never imports it.

    from seqadd_ray import answer_dataset
    answered = answer_dataset(ray.data.from_items([{"text": "535+61"}]))
"""

from __future__ import annotations


def answer_dataset(*args, **kwargs):
    """See :func:`seqadd_ray.batch.answer_dataset` (imported on first use: it imports Ray)."""
    from seqadd_ray.batch import answer_dataset as implementation

    return implementation(*args, **kwargs)


__all__ = ["answer_dataset"]
