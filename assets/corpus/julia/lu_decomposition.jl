# Doolittle: L has a unit diagonal, U is upper triangular and A = L * U
function lu_decompose(A::Matrix{Float64})
    n = size(A, 1)
    L = zeros(n, n)
    U = zeros(n, n)
    for i in 1:n
        for k in i:n
            s = 0.0
            for j in 1:i-1
                s += L[i, j] * U[j, k]
            end
            U[i, k] = A[i, k] - s
        end
        L[i, i] = 1.0
        for k in i+1:n
            s = 0.0
            for j in 1:i-1
                s += L[k, j] * U[j, i]
            end
            L[k, i] = (A[k, i] - s) / U[i, i]
        end
    end
    return L, U
end
