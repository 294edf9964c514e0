# Replace the derivative by the slope through the last two iterates
function secant(f::Function, x0::Real, x1::Real; tol=1e-12, maxiter=100)
    f0, f1 = f(x0), f(x1)
    for _ in 1:maxiter
        if f1 == f0
            break
        end
        x2 = x1 - f1 * (x1 - x0) / (f1 - f0)
        x0, f0 = x1, f1
        x1, f1 = x2, f(x2)
        if abs(x1 - x0) < tol
            break
        end
    end
    return x1
end
