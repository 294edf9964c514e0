# Iterate x -= f(x) / df(x) until the step is smaller than tol
function newton(f::Function, df::Function, x0::Real; tol=1e-12, maxiter=100)
    x = float(x0)
    for _ in 1:maxiter
        dx = f(x) / df(x)
        x -= dx
        if abs(dx) < tol
            break
        end
    end
    return x
end
