# Each sweep computes all components from the previous iterate only
function jacobi(A::Matrix{Float64}, b::Vector{Float64}; tol=1e-10, maxiter=1000)
    n = length(b)
    x = zeros(n)
    xnew = zeros(n)
    for _ in 1:maxiter
        for i in 1:n
            s = b[i]
            for j in 1:n
                if j != i
                    s -= A[i, j] * x[j]
                end
            end
            xnew[i] = s / A[i, i]
        end
        delta = maximum(abs.(xnew .- x))
        x, xnew = xnew, x
        if delta < tol
            break
        end
    end
    return x
end
