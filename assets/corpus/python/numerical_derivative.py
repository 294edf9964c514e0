def derivative(f, x: float, h: float = 1e-5) -> float:
    # Symmetric difference quotient, accurate to O(h^2)
    return (f(x + h) - f(x - h)) / (2 * h)
