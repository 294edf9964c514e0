# n forward steps y += h * f(t, y) of size h = (t1 - t0) / n; returns y at t1
function euler(f::Function, y0, t0::Real, t1::Real, n::Int)
    h = (t1 - t0) / n
    y = y0
    for i in 0:n-1
        t = t0 + i * h
        y = y + h * f(t, y)
    end
    return y
end
