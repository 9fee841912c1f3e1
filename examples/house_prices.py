"""House prices: the mean squared error by hand, then linear regression by batch gradient descent.

Three houses of 1,500, 1,800 and 1,200 sq ft sold for 100, 120 and 80 (thousands).  A model
that predicted 90, 130 and 95 has MSE ((100−90)² + (120−130)² + (80−95)²)/3 = 141.67.
Training price = w·size + b from w = 0.1, b = 0.2 lowers the MSE at every step.  The
defaults (learning_rate="auto": standardized data, step 1/L; epochs=None: until the MSE stops
falling) reach least squares in a few epochs.

    python examples/house_prices.py
"""

import numpy as np

import steepest
from steepest.models.linear_regression import mean_squared_error

sizes = np.array([[1.5], [1.8], [1.2]])  # thousands of sq ft
prices = np.array([100.0, 120.0, 80.0])  # thousands

print(f"MSE of predictions 90, 130, 95: {mean_squared_error(prices, [90, 130, 95]):.2f}")

# the textbook steps: η = 0.5 on the data as given, all 800 of them
model = steepest.LinearRegression(method="batch", learning_rate=0.5, epochs=800)
model.fit(sizes, prices, coef_init=[0.1], intercept_init=0.2)
history = model.loss_history_
print("MSE over the first steps:", ", ".join(f"{v:.2f}" for v in history[:6]))
falling = all(b < a for a, b in zip(history, history[1:]))
print(f"MSE fell at every one of {len(history) - 1} steps: {falling}")
(w_ls, b_ls), *_ = np.linalg.lstsq(np.c_[sizes, np.ones(3)], prices, rcond=None)
print(f"gradient descent: w = {model.coef_[0]:.3f}, b = {model.intercept_:.3f}")
print(f"least squares:    w = {w_ls:.3f}, b = {b_ls:.3f}")
print(f"predicted price of a 2,000 sq ft house: {model.predict([[2.0]])[0]:.1f}")
auto = steepest.LinearRegression().fit(sizes, prices)
print(f"defaults (learning_rate='auto'): w = {auto.coef_[0]:.3f}, b = {auto.intercept_:.3f} "
      f"after {auto.n_iter_} epochs")
