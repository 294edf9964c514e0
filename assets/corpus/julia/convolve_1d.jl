# Full result of length m + n - 1: y[i + j - 1] += x[i] * h[j]
function convolve(x::Vector{Float64}, h::Vector{Float64})
    m, n = length(x), length(h)
    y = zeros(m + n - 1)
    for i in 1:m
        for j in 1:n
            y[i + j - 1] += x[i] * h[j]
        end
    end
    return y
end
