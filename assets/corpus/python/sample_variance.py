def mean_variance(x: list[float]) -> tuple[float, float]:
    n = len(x)
    mean = sum(x) / n
    # Divide by n - 1 for the unbiased estimator
    var = sum((v - mean) ** 2 for v in x) / (n - 1)
    return mean, var
