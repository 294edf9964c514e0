# Predictor-corrector: an Euler predictor, then the average of the two slopes
function heun(f::Function, y0, t0::Real, t1::Real, n::Int)
    h = (t1 - t0) / n
    y = y0
    for i in 0:n-1
        t = t0 + i * h
        k1 = f(t, y)
        k2 = f(t + h, y + h * k1)
        y = y + h / 2 * (k1 + k2)
    end
    return y
end
