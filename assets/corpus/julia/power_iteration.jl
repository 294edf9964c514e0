# Repeatedly apply A and normalize; the Rayleigh quotient v' * A * v estimates the eigenvalue
function power_iteration(A::Matrix{Float64}; tol=1e-10, maxiter=1000)
    n = size(A, 1)
    v = ones(n) ./ sqrt(n)
    lambda = 0.0
    for _ in 1:maxiter
        w = A * v
        newlambda = sum(v .* w)
        v = w ./ sqrt(sum(w .* w))
        if abs(newlambda - lambda) < tol
            return newlambda
        end
        lambda = newlambda
    end
    return lambda
end
