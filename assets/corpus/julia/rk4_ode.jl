# Classical fourth-order Runge-Kutta with n steps of size h; returns y at t1
function rk4(f::Function, y0, t0::Real, t1::Real, n::Int)
    h = (t1 - t0) / n
    y = y0
    for i in 0:n-1
        t = t0 + i * h
        k1 = f(t, y)
        k2 = f(t + h / 2, y + h / 2 * k1)
        k3 = f(t + h / 2, y + h / 2 * k2)
        k4 = f(t + h, y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    end
    return y
end
