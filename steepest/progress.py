"""The one progress bar of the library (tqdm), for training, big evaluations and downloads."""


def progress_bar(total, verbose, **options):
    """A tqdm bar over ``total`` steps, or None when ``verbose`` is off.

    tqdm is imported here, on first use, so that ``import steepest`` stays light; with
    ``disable=None`` tqdm stays silent when stderr is not a terminal (CI logs, pipes).
    """
    if not verbose or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=None, **options)
