# Sweeps through the rows using the newest values at once; stops when the largest update is below tol
function gauss_seidel(A::Matrix{Float64}, b::Vector{Float64}; tol=1e-10, maxiter=1000)
    n = length(b)
    x = zeros(n)
    for _ in 1:maxiter
        delta = 0.0
        for i in 1:n
            s = b[i]
            for j in 1:n
                if j != i
                    s -= A[i, j] * x[j]
                end
            end
            xi = s / A[i, i]
            delta = max(delta, abs(xi - x[i]))
            x[i] = xi
        end
        if delta < tol
            break
        end
    end
    return x
end
