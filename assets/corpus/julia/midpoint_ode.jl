# Each step uses the slope at the midpoint reached by a half Euler step
function midpoint_method(f::Function, y0, t0::Real, t1::Real, n::Int)
    h = (t1 - t0) / n
    y = y0
    for i in 0:n-1
        t = t0 + i * h
        k1 = f(t, y)
        y = y + h * f(t + h / 2, y + h / 2 * k1)
    end
    return y
end
