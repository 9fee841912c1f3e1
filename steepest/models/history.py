"""What ``Network.fit`` returns: per-epoch metrics, as lists keyed by name."""


class History:
    """Per-epoch training record.

    ``history["loss"]`` (or ``history.history["loss"]``) is the list of per-epoch training
    losses; other keys: ``epoch``, ``val_loss``, ``val_accuracy`` (with validation data),
    ``samples_per_s``, ``seconds``, ``learning_rate``, and ``grad_norms`` (per-layer
    ‖∂L/∂Wˡ‖ on a fixed probe batch after the epoch, input layer first).  ``device`` names the
    device that ran; ``warmup_seconds`` the compile (or cache load) before epoch 1.
    """

    def __init__(self, device):
        self.device = device
        self.history = {}
        self.warmup_seconds = 0.0  # compiling (or loading cached) kernels before epoch 1

    def append(self, **metrics):
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.history.get("epoch", []))

    def to_dict(self):
        """A JSON-ready dict: the device and every per-epoch list."""
        return {"device": self.device, "warmup_seconds": self.warmup_seconds,
                **{k: list(v) for k, v in self.history.items()}}

    def __repr__(self):
        return f"History(device={self.device!r}, epochs={len(self)}, keys={sorted(self.history)})"
