# Triple loop C = A * B ordered j, k, i so the inner loop runs down columns
function matmul(A::Matrix{Float64}, B::Matrix{Float64})
    n, m = size(A)
    size(B, 1) == m || throw(DimensionMismatch("inner dimensions differ"))
    p = size(B, 2)
    C = zeros(n, p)
    for j in 1:p
        for k in 1:m
            bkj = B[k, j]
            for i in 1:n
                C[i, j] += A[i, k] * bkj
            end
        end
    end
    return C
end
