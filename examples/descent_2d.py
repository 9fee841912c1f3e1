"""Steepest descent on the elongated bowl f(x, y) = x² + 10y²: the path bends.

The gradient (2x, 20y) first points almost straight down the steep y direction; once y is
small the shallow x direction is all that is left, so the path turns by nearly a right angle.
The gradient is estimated by central differences (no grad given).

    python examples/descent_2d.py
"""

import numpy as np

import steepest

path = steepest.minimize(lambda p: p[0] ** 2 + 10 * p[1] ** 2, [-4.0, 1.5], learning_rate=0.02,
                         epochs=60)
steps = np.diff(path.points, axis=0)
angles = np.degrees(np.arctan2(steps[:, 1], steps[:, 0]))
for k in (0, 1, 2, 5, 10, 20, 40, 59):
    x, y = path.points[k + 1]
    print(f"step {k + 1:2d}: ({x:8.4f}, {y:8.4f})  direction {angles[k]:7.2f}°")
print(f"the path turned by {abs(angles[0] - angles[-1]):.1f}°; f fell from "
      f"{path.values[0]:.2f} to {path.values[-1]:.4f}")
