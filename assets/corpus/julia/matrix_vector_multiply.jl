# y = A * x, looping over columns to follow Julia's column-major layout
function matvec(A::Matrix{Float64}, x::Vector{Float64})
    n, m = size(A)
    length(x) == m || throw(DimensionMismatch("length(x) must equal size(A, 2)"))
    y = zeros(n)
    for j in 1:m
        for i in 1:n
            y[i] += A[i, j] * x[j]
        end
    end
    return y
end
