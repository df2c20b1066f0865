"""Iterate over the first N videos of a dataset in batches, with a progress bar.

Evaluation, generation and the per-level MSPred tools all walk a dataset the
same way: batches without ``drop_remainder`` (so no video is skipped), the
last batch trimmed so that exactly ``num_videos`` videos are seen.
"""

from tqdm import tqdm


def first_videos(dataset, batch_size, num_videos=None, desc=None):
    """Yield batches (dicts of tensors) covering the first ``num_videos`` videos of ``dataset`` (all if None).

    ``desc`` names the tqdm progress bar (in videos); ``None`` shows no bar.
    """
    total = dataset.num_examples_per_epoch()
    if num_videos:
        total = min(total, num_videos)
    seen = 0
    with tqdm(total=total, desc=desc, unit="video", disable=desc is None) as progress:
        for batch in dataset.make_dataset(batch_size, drop_remainder=False):
            keep = min(int(batch["images"].shape[0]), total - seen)
            if keep <= 0:
                break
            yield {key: value[:keep] for key, value in batch.items()}
            seen += keep
            progress.update(keep)
            if seen >= total:
                break
