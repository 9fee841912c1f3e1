"""What ``Network.fit`` returns: per-epoch metrics, as lists keyed by name."""


class History:
    """Per-epoch training record.

    ``history["loss"]`` (or ``history.history["loss"]``) is the list of per-epoch training
    losses (the mean over the epoch's steps); other keys: ``epoch``, ``accuracy`` (for
    classification: the training accuracy at the end of the epoch, on up to 10,000 evenly
    spaced training rows), ``val_loss``, ``val_accuracy`` (with validation data),
    ``samples_per_s``, ``seconds``, ``learning_rate``, and ``grad_norms`` (per-layer
    ‖∂L/∂Wˡ‖ on a fixed probe batch after the epoch, input layer first).  ``device`` names the
    device that ran; ``world_size`` the number of processes that trained together
    (``fit(comm=...)``, else 1); ``warmup_seconds`` the compile (or cache load) before epoch 1;
    ``warnings`` the ``TrainingWarning`` messages of the run (unscaled inputs, layers that no
    gradient reaches); ``training_path`` which kernels trained and why (on the CPU "fused:
    …" or "tiled: …", see ``steepest.kernels.cpu.paths``; on CUDA "one-block: …" or
    "tiled: …").  Epochs are numbered by the network's count, so a second ``fit``
    call's history starts where the first one's ended.

    It reads as a mapping of those names to their lists (``keys()``, ``get``, ``items()``,
    ``dict(history)``, ``list(history)``), except that ``len(history)`` is the number of
    epochs.
    """

    world_size = 1  # read by histories pickled before it existed
    training_path = None

    def __init__(self, device, world_size=1):
        self.device = device
        self.world_size = world_size  # processes that trained together (MPI), else 1
        self.history = {}
        self.warmup_seconds = 0.0  # compiling (or loading cached) kernels before epoch 1
        self.warnings = []  # TrainingWarning messages, in the order they were raised
        self.training_path = None  # "path: why" (Backend.training_path)

    def append(self, **metrics):
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(value)

    # A read-only mapping of metric name -> per-epoch list, as ``history.history`` is:
    # ``keys``, ``get``, ``items``, ``dict(h)``, ``list(h)`` (the names) all work.  ``len(h)``
    # is the number of epochs, as it has always been (``len(h.keys())`` counts the names).
    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __iter__(self):
        return iter(self.history)

    def keys(self):
        return self.history.keys()

    def values(self):
        return self.history.values()

    def items(self):
        return self.history.items()

    def get(self, key, default=None):
        return self.history.get(key, default)

    def __len__(self):
        """The number of epochs recorded."""
        return len(self.history.get("epoch", []))

    def to_dict(self):
        """A JSON-ready dict: the device, the world size and every per-epoch list."""
        return {"device": self.device, "world_size": self.world_size,
                "training_path": self.training_path, "warmup_seconds": self.warmup_seconds,
                "warnings": list(self.warnings), **{k: list(v) for k, v in self.history.items()}}

    def plot(self, path, keys=None):
        """Draw the per-epoch curves to a PNG at ``path`` (needs matplotlib: steepest[plot]).

        One panel per kind of metric: losses (``loss``, ``val_loss``), accuracies, and the
        learning rate when it changed.  Returns ``path``.
        """
        try:
            import matplotlib
            matplotlib.use("Agg")  # files only: no display needed
            import matplotlib.pyplot as plt
            from matplotlib.ticker import MaxNLocator
        except ImportError:
            raise ImportError(
                "History.plot needs matplotlib: pip install 'steepest[plot]'") from None
        if not len(self):
            raise ValueError("the history is empty: nothing to plot")
        epochs = self.history["epoch"]
        groups = [[k for k in ("loss", "val_loss") if k in self.history],
                  [k for k in self.history if k.endswith("accuracy")]]
        if len(set(self.history.get("learning_rate", []))) > 1:
            groups.append(["learning_rate"])
        if keys is not None:
            groups = [[k for k in keys if k in self.history]]
        groups = [g for g in groups if g]
        fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.6), squeeze=False)
        for ax, group in zip(axes[0], groups):
            for key in group:
                ax.plot(epochs, self.history[key], marker="o", markersize=3, label=key)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend()
            ax.grid(alpha=0.3)
        fig.suptitle(f"steepest training history ({self.device})")
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
        plt.close(fig)
        return path

    def __repr__(self):
        return f"History(device={self.device!r}, epochs={len(self)}, keys={sorted(self.history)})"
