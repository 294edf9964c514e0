# Forward elimination with partial pivoting, then back substitution
function gaussian_elimination(A::Matrix{Float64}, b::Vector{Float64})
    n = length(b)
    M = copy(A)
    y = copy(b)
    for k in 1:n-1
        p = k - 1 + argmax(abs.(M[k:n, k]))
        if p != k
            M[k, :], M[p, :] = M[p, :], M[k, :]
            y[k], y[p] = y[p], y[k]
        end
        for i in k+1:n
            f = M[i, k] / M[k, k]
            M[i, k:n] .-= f .* M[k, k:n]
            y[i] -= f * y[k]
        end
    end
    x = zeros(n)
    for i in n:-1:1
        s = y[i]
        for j in i+1:n
            s -= M[i, j] * x[j]
        end
        x[i] = s / M[i, i]
    end
    return x
end
